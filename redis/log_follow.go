package redis

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/plexus-router/plexus/channels"
)

// follower serves Wait for one shard: a single goroutine blocks in XREAD
// on the index streams of every waited channel and wakes local waiters.
// When a waiter needs an entry the XREAD in flight would not return (a
// channel not in it, or an offset at or before the one it reads the
// channel from), the blocked XREAD is interrupted with CLIENT UNBLOCK
// from another connection and built again. The epochs of waited
// channels are re-checked every EpochCheckInterval and after connection
// errors, so a shard that lost its data wakes its waiters.
type follower struct {
	s *shard

	mu       sync.Mutex
	chans    map[string]*watch
	gen      uint64 // bumped when a channel needs a new XREAD (added, or lower next)
	readGen  uint64 // gen of the XREAD in flight
	inRead   bool
	clientID int64
	closed   bool
	wakeup   chan struct{} // cap 1: the set changed while idle
	kicking  bool
}

// watch is a channel in the XREAD set. A channel stays in the set for a
// while after its last waiter left (idle), reading on from the last entry
// seen, so that a tail waiting again right after a wake-up does not make
// the loop restart its XREAD.
type watch struct {
	waiters   map[*waiter]struct{}
	validated bool      // its meta was checked since it was added
	seen      uint64    // last offset of the newest entry seen (0: none)
	from      uint64    // the last XREAD built reads entries past this offset
	idleSince time.Time // when the last waiter left (zero while waited on)
}

// idleLinger is how long a channel without waiters stays in the XREAD set.
const idleLinger = 2 * time.Second

type waiter struct {
	next  uint64
	epoch string // epoch when the wait began ("" if there was no log)
	known bool   // epoch is known (false: Redis was unreachable)
	check bool   // the meta could not be read at the call: check it at once
	done  chan struct{}
}

func newFollower(s *shard) *follower {
	return &follower{s: s, chans: map[string]*watch{}, wakeup: make(chan struct{}, 1)}
}

// wait blocks until channelID has a message at offset >= next in epoch,
// its epoch is not epoch, ctx is done or the log is closed. An empty epoch
// is the one at the call (or, when Redis cannot be reached, at the first
// check that reaches it).
//
// The waiter's epoch is the caller's when it gives one, never one read
// here: the history the caller read in may have been lost since (a
// restarted shard), and a new history that already reached next would
// otherwise be taken for the caller's and never wake it.
func (f *follower) wait(ctx context.Context, channelID, epoch string, next uint64) error {
	w := &waiter{next: next, done: make(chan struct{})}
	if epoch != "" {
		w.epoch, w.known = epoch, true
	}
	m, err := f.s.meta(ctx, channelID, false)
	if err == nil {
		if m.next > next || (epoch != "" && m.epoch != epoch) {
			return nil
		}
		w.epoch, w.known = m.epoch, true
	} else if ctx.Err() != nil {
		return ctx.Err()
	} else {
		w.check = true
	}
	if !f.add(channelID, w) {
		return channels.ErrClosed
	}
	select {
	case <-w.done:
		if f.s.l.closed.Load() {
			return channels.ErrClosed
		}
		return nil
	case <-ctx.Done():
		f.remove(channelID, w)
		return ctx.Err()
	}
}

func (f *follower) add(ch string, w *waiter) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	wt := f.chans[ch]
	switch {
	case wt == nil:
		wt = &watch{waiters: map[*waiter]struct{}{}}
		f.chans[ch] = wt
		f.gen++
	case w.check:
		wt.validated = false
		f.gen++
	case w.next <= wt.seen:
		// The waiter checked that nothing at next exists, yet an entry
		// past it was seen: that was another epoch.
		wt.seen = 0
		f.gen++
	case w.next <= wt.from:
		// The XREAD in flight reads from past next: from a waiter that
		// has left since (the channel lingers), or from a later one.
		f.gen++
	}
	// Otherwise the XREAD in flight returns at the first entry that can
	// concern this waiter (a watch added since is read by the next one).
	wt.idleSince = time.Time{}
	wt.waiters[w] = struct{}{}
	f.interruptLocked()
	return true
}

func (wt *watch) minNext() uint64 {
	var n uint64
	for w := range wt.waiters {
		if n == 0 || w.next < n {
			n = w.next
		}
	}
	return n
}

func (f *follower) remove(ch string, w *waiter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if wt := f.chans[ch]; wt != nil {
		delete(wt.waiters, w)
		f.idleLocked(ch, wt)
	}
}

// idleLocked marks a watch without waiters idle, or drops it when it has
// nothing to read from.
func (f *follower) idleLocked(ch string, wt *watch) {
	if len(wt.waiters) > 0 {
		return
	}
	if wt.seen == 0 {
		delete(f.chans, ch)
	} else if wt.idleSince.IsZero() {
		wt.idleSince = time.Now()
	}
}

// interruptLocked makes the loop pick up a changed set: a signal when it
// is idle, CLIENT UNBLOCK (from another goroutine) when it is in XREAD.
func (f *follower) interruptLocked() {
	select {
	case f.wakeup <- struct{}{}:
	default:
	}
	if f.inRead && f.readGen < f.gen && !f.kicking {
		f.kicking = true
		go f.unblock()
	}
}

// unblock sends CLIENT UNBLOCK until the XREAD in flight has been
// replaced by one that includes the latest changes.
func (f *follower) unblock() {
	for {
		f.mu.Lock()
		if !f.inRead || f.readGen >= f.gen || f.closed {
			f.kicking = false
			f.mu.Unlock()
			return
		}
		id := f.clientID
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(f.s.l.ctx, time.Second)
		n, err := f.s.client.ClientUnblock(ctx, id).Result()
		cancel()
		if err != nil || n == 0 {
			// Not blocked yet (or Redis unreachable): try again shortly.
			select {
			case <-time.After(time.Millisecond):
			case <-f.s.l.stop:
				f.mu.Lock()
				f.kicking = false
				f.mu.Unlock()
				return
			}
		}
	}
}

// kick wakes the loop (for Close).
func (f *follower) kick() {
	select {
	case f.wakeup <- struct{}{}:
	default:
	}
}

// wakeLocked wakes the waiters of ch that satisfy pred.
func (f *follower) wakeLocked(ch string, wt *watch, pred func(*waiter) bool) {
	for w := range wt.waiters {
		if pred(w) {
			close(w.done)
			delete(wt.waiters, w)
		}
	}
	f.idleLocked(ch, wt)
}

// wakeAll wakes every waiter of ch (the log was deleted).
func (f *follower) wakeAll(ch string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if wt := f.chans[ch]; wt != nil {
		wt.seen = 0
		f.wakeLocked(ch, wt, func(*waiter) bool { return true })
	}
}

// epochChanged wakes waiters of ch that wait in another epoch (a write of
// this node started a new one).
func (f *follower) epochChanged(ch, epoch string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if wt := f.chans[ch]; wt != nil {
		wt.seen = 0
		f.wakeLocked(ch, wt, func(w *waiter) bool { return !w.known || w.epoch != epoch })
	}
}

// closeAll wakes every waiter; later waits fail.
func (f *follower) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch, wt := range f.chans {
		f.wakeLocked(ch, wt, func(*waiter) bool { return true })
	}
	clear(f.chans)
}

const maxOffsetSeq = "18446744073709551615"

// run is the follower loop.
func (f *follower) run() {
	defer f.s.l.wg.Done()
	l := f.s.l
	var conn *goredis.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	lastCheck := time.Now()
	backoff := 10 * time.Millisecond
	var streams []string
	var names []string
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		if conn == nil {
			conn = f.s.client.Conn()
			ctx, cancel := context.WithTimeout(l.ctx, 2*time.Second)
			id, err := conn.ClientID(ctx).Result()
			cancel()
			if err != nil {
				conn.Close()
				conn = nil
				f.sleep(backoff)
				backoff = min(backoff*2, time.Second)
				continue
			}
			f.mu.Lock()
			f.clientID = id
			for _, wt := range f.chans {
				wt.validated = false
			}
			f.mu.Unlock()
		}

		// Validate epochs: new channels, and all of them periodically.
		all := time.Since(lastCheck) >= l.cfg.EpochCheckInterval
		if err := f.validate(conn, all); err != nil {
			conn.Close()
			conn = nil
			f.sleep(backoff)
			backoff = min(backoff*2, time.Second)
			continue
		}
		if all {
			lastCheck = time.Now()
		}

		// Build the XREAD.
		f.mu.Lock()
		streams, names = streams[:0], names[:0]
		ids := make([]string, 0, len(f.chans))
		waited := 0
		now := time.Now()
		for ch, wt := range f.chans {
			if len(wt.waiters) == 0 && now.Sub(wt.idleSince) > idleLinger {
				delete(f.chans, ch)
				continue
			}
			from := wt.seen // offsets after it are new
			if len(wt.waiters) > 0 {
				waited++
				from = max(wt.minNext()-1, wt.seen)
			}
			wt.from = from
			_, idx, _ := logKeys(ch)
			streams = append(streams, idx)
			names = append(names, ch)
			if from == 0 {
				ids = append(ids, "0-0")
			} else {
				ids = append(ids, strconv.FormatUint(from, 10)+"-"+maxOffsetSeq)
			}
		}
		f.readGen = f.gen
		f.inRead = len(names) > 0
		f.mu.Unlock()
		if waited == 0 {
			// Nothing to wake: do not keep Redis busy for idle channels.
			f.mu.Lock()
			f.inRead = false
			for ch, wt := range f.chans {
				if len(wt.waiters) == 0 {
					delete(f.chans, ch)
				}
			}
			f.mu.Unlock()
			select {
			case <-f.wakeup:
			case <-l.stop:
				return
			case <-time.After(l.cfg.EpochCheckInterval):
			}
			continue
		}
		block := l.cfg.EpochCheckInterval
		ctx, cancel := context.WithTimeout(l.ctx, block+5*time.Second)
		res, err := conn.XRead(ctx, &goredis.XReadArgs{
			Streams: append(streams, ids...),
			Count:   1,
			Block:   block,
		}).Result()
		cancel()
		f.mu.Lock()
		f.inRead = false
		f.mu.Unlock()
		if err != nil && !errors.Is(err, goredis.Nil) {
			if l.ctx.Err() != nil {
				return
			}
			if isUnblocked(err) {
				continue
			}
			conn.Close()
			conn = nil
			f.sleep(backoff)
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		if len(res) == 0 {
			continue
		}
		f.mu.Lock()
		for _, st := range res {
			if len(st.Messages) == 0 {
				continue
			}
			ch := channelOfIdxKey(st.Stream)
			last, _, err := parseEntryID(st.Messages[len(st.Messages)-1].ID)
			if err != nil {
				continue
			}
			if wt := f.chans[ch]; wt != nil {
				wt.seen = max(wt.seen, last)
				f.wakeLocked(ch, wt, func(w *waiter) bool { return w.next <= last })
			}
		}
		f.mu.Unlock()
	}
}

func isUnblocked(err error) bool {
	return goredis.HasErrorPrefix(err, "UNBLOCKED")
}

func channelOfIdxKey(key string) string {
	const prefix, suffix = "ch:", ":log:idx"
	if len(key) >= len(prefix)+len(suffix) {
		return key[len(prefix) : len(key)-len(suffix)]
	}
	return ""
}

func (f *follower) sleep(d time.Duration) {
	select {
	case <-time.After(d):
	case <-f.s.l.stop:
	}
}

// validate reads the meta of channels not validated yet (all of them when
// all is set) and wakes waiters whose epoch changed or whose offset exists.
func (f *follower) validate(conn *goredis.Conn, all bool) error {
	f.mu.Lock()
	var names []string
	for ch, wt := range f.chans {
		if all || !wt.validated {
			names = append(names, ch)
		}
	}
	f.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(f.s.l.ctx, 5*time.Second)
	defer cancel()
	cmds := make([]*goredis.SliceCmd, len(names))
	_, err := conn.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, ch := range names {
			_, _, meta := logKeys(ch)
			cmds[i] = p.HMGet(ctx, meta, metaFields...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ch := range names {
		wt := f.chans[ch]
		if wt == nil {
			continue
		}
		wt.validated = true
		m := parseMeta(cmds[i].Val())
		if m.next-1 < wt.seen {
			wt.seen = 0 // another epoch, or trimmed away and restarted
		}
		f.wakeLocked(ch, wt, func(w *waiter) bool {
			if !w.known {
				w.epoch, w.known = m.epoch, true
				return m.next > w.next
			}
			return w.epoch != m.epoch || m.next > w.next
		})
	}
	return nil
}
