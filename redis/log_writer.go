package redis

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/plexus-router/plexus/channels"
)

// shard is one Redis server of the log: its write buffer and writer, and
// its follower.
type shard struct {
	l      *Log
	idx    int
	name   string // label: the index
	url    string
	client *goredis.Client
	m      shardMetrics
	fol    *follower
	cache  *entryCache
	spool  *spool // nil without LogConfig.SpoolDir

	mu          sync.Mutex
	queue       []*chunk              // chunks waiting for the writer, oldest first
	chans       map[string]*chanState // channels with unwritten messages
	bytes       int64                 // buffer space used (queued and being written)
	limit       int64
	pendingMsgs int
	space       chan struct{} // closed (and replaced) when bytes go down
	progress    chan struct{} // closed (and replaced) after each write round
	closed      bool          // no more appends
	retrim      map[string]struct{}
	written     map[string]int64 // channels written by this node → last write (Unix ns), for age sweeps
	free        []*chunk         // written chunks kept for reuse
	freeBytes   int64
	maxSeq      uint64 // highest write sequence number given to a message
	roundPos    int64  // spool position of the round in flight's first message of this run (-1: none)

	wake       chan struct{} // cap 1: something was queued
	full       chan struct{} // cap 1: FlushMessages reached
	closing    chan struct{} // closed by closeWriter: write everything, then exit
	exited     chan struct{}
	stats      shardCounters
	healthy    atomic.Bool
	roundStart atomic.Int64 // Unix ns when the round in flight began (0: none)
	lastFull   atomic.Int64 // Unix ns of the last ErrLogFull
	replayLeft atomic.Int64 // chunks replayed from old spool segments, not yet written

	// writer goroutine only
	prevSeq   map[string]uint64
	lastErrAt time.Time
}

// maxFreeBytes bounds the memory of reusable chunks per shard.
const maxFreeBytes = 8 << 20

// shardCounters mirror the metrics for Stats.
type shardCounters struct {
	writeErrors, flushes, bufferFull, written, dropped, duplicates atomic.Int64
}

// chanState tracks one channel's messages admitted on this node and not
// yet written.
type chanState struct {
	open     *chunk // the chunk still accepting messages, or nil
	admitted uint64 // messages admitted
	written  uint64 // messages written
	base     uint64 // the k-th message admitted has write sequence number base+k
}

// chunk is one future stream entry.
//
// Its messages have consecutive write sequence numbers (per writer field
// and channel, increasing; see chanState.base) and seq is its last
// message's: the append script skips the messages it already applied
// (seq - n < number <= the writer's stored sequence), which makes a retry,
// and the replay of a spool after a crash, apply every message once.
type chunk struct {
	ch         string
	st         *chanState
	n          int
	bytes      int // message data bytes
	tmin, tmax int64
	d          []byte // framed messages
	cum        []byte // cumulative data sizes, uint32 big-endian each
	seq, prev  uint64
	attempts   int
	wf         string    // writer field: this Log's, or an old segment's
	pos        int64     // spool position of the first message (-1: none)
	seg        *spoolSeg // old segment the chunk was replayed from, or nil

	// A batch with an idempotency key is a chunk of its own, whole (not
	// bounded by MaxEntryMessages or MaxEntryBytes): the append script
	// stores it once per key, all or nothing.
	keyed bool
	key   keyDigest
	count int  // keyed, replayed: the batch's message count
	dup   bool // keyed: the script found its key stored before
}

// keyDigest is the digest of an idempotency key kept in Redis and in the
// spool: the first 16 bytes of its SHA-256.
type keyDigest [keySize]byte

const keySize = 16

func digestKey(key string) keyDigest {
	sum := sha256.Sum256([]byte(key))
	return keyDigest(sum[:keySize])
}

// add appends a message.
func (c *chunk) add(t int64, msg []byte) {
	c.d = appendRecord(c.d, t, msg)
	c.n++
	c.bytes += len(msg)
	c.cum = binary.BigEndian.AppendUint32(c.cum, uint32(c.bytes))
	c.tmin, c.tmax = min(c.tmin, t), max(c.tmax, t)
}

func newShard(l *Log, i int, url string, c *goredis.Client) *shard {
	s := &shard{
		l:        l,
		idx:      i,
		name:     strconv.Itoa(i),
		url:      url,
		client:   c,
		m:        l.cfg.Metrics.shard(strconv.Itoa(i)),
		chans:    map[string]*chanState{},
		limit:    l.cfg.BufferBytes,
		space:    make(chan struct{}),
		progress: make(chan struct{}),
		written:  map[string]int64{},
		wake:     make(chan struct{}, 1),
		full:     make(chan struct{}, 1),
		closing:  make(chan struct{}),
		exited:   make(chan struct{}),
		prevSeq:  map[string]uint64{},
		roundPos: -1,
	}
	s.healthy.Store(true)
	s.fol = newFollower(s)
	s.cache = newEntryCache(l.cfg.ReadCacheBytes)
	return s
}

// isHealthy reports whether the shard's writes succeed: the last round
// succeeded, the round in flight is not slow, and no append found the
// buffer full recently.
func (s *shard) isHealthy() bool {
	now := time.Now().UnixNano()
	if !s.healthy.Load() || s.replayLeft.Load() > 0 {
		return false
	}
	if rs := s.roundStart.Load(); rs != 0 && now-rs > int64(time.Second) {
		return false
	}
	if lf := s.lastFull.Load(); lf != 0 && now-lf < int64(5*time.Second) {
		return false
	}
	return true
}

// hasRoom reports whether need more bytes fit in memory and disk more in
// the spool. An empty buffer takes any append, so one oversize append
// cannot wait forever. s.mu is held.
func (s *shard) hasRoom(need, disk int64) bool {
	if s.bytes == 0 {
		return true
	}
	p := s.spool
	// Room for the headers of two new segments: the records being written
	// and those buffered may each start one.
	return s.bytes+need <= s.limit && (p == nil || p.size.Load()+disk+2*int64(len(p.header)) <= p.limit)
}

// admit copies the batches into the buffer once there is room.
func (s *shard) admit(ctx context.Context, batches []*channels.Batch) error {
	var need, disk int64
	for _, b := range batches {
		need += batchSize(b)
		disk += spoolSize(b)
	}
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return channels.ErrClosed
		}
		if s.hasRoom(need, disk) {
			break
		}
		wait := s.space
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			inc(s.m.bufferFull, 1)
			s.stats.bufferFull.Add(1)
			s.lastFull.Store(time.Now().UnixNano())
			return channels.ErrLogFull
		case <-s.l.stop:
			return channels.ErrClosed
		}
		s.mu.Lock()
	}
	now := s.l.cfg.Now().UnixNano()
	for _, b := range batches {
		if b.Len() > 0 {
			s.copyIn(b, now)
		}
	}
	s.mu.Unlock()
	s.signal()
	if s.spool != nil {
		s.spool.signal()
	}
	return nil
}

// copyIn appends a batch to its channel's open chunk. s.mu is held.
func (s *shard) copyIn(b *channels.Batch, now int64) {
	t := b.Time
	if t == 0 {
		t = now
	}
	st := s.chans[b.ChannelID]
	if st == nil {
		// Sequence numbers stay above any this writer gave the channel
		// before, and near the time in µs (the append script prunes
		// writer fields by that time).
		st = &chanState{base: max(s.maxSeq, uint64(now/1e3))}
		s.chans[b.ChannelID] = st
	}
	maxMsgs, maxBytes := s.l.cfg.MaxEntryMessages, s.l.cfg.MaxEntryBytes
	p := s.spool
	var kc *chunk
	var key *keyDigest
	if b.Key != "" {
		// A chunk of its own, closed to later messages.
		kc = s.startChunk(b.ChannelID, st, t)
		kc.keyed, kc.key, kc.count = true, digestKey(b.Key), b.Len()
		key = &kc.key
		st.open = nil
	}
	for i := range b.Len() {
		msg := b.Message(i)
		c := kc
		if c == nil {
			c = st.open
			if c == nil || c.n >= maxMsgs || c.n > 0 && len(c.d)+recordHeader+len(msg) > maxBytes {
				c = s.startChunk(b.ChannelID, st, t)
				st.open = c
			}
		}
		c.seq = st.base + st.admitted + uint64(i) + 1
		if p != nil {
			p.add(c.seq, t, b.ChannelID, msg, key, b.Len())
		}
		startLen := len(c.d)
		c.add(t, msg)
		s.bytes += int64(len(c.d) - startLen)
	}
	st.admitted += uint64(b.Len())
	s.maxSeq = max(s.maxSeq, st.base+st.admitted)
	s.pendingMsgs += b.Len()
	setGauge(s.m.bufferBytes, s.bytes)
	if s.pendingMsgs >= s.l.cfg.FlushMessages {
		select {
		case s.full <- struct{}{}:
		default:
		}
	}
}

// startChunk queues a new chunk for a message at time t. s.mu is held.
func (s *shard) startChunk(ch string, st *chanState, t int64) *chunk {
	c := s.newChunk(ch, st)
	c.tmin = t
	s.queue = append(s.queue, c)
	if s.spool != nil {
		c.pos = s.spool.end
	}
	return c
}

func (s *shard) newChunk(ch string, st *chanState) *chunk {
	var c *chunk
	if n := len(s.free); n > 0 {
		c = s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
		s.freeBytes -= int64(cap(c.d) + cap(c.cum))
	} else {
		c = &chunk{}
	}
	*c = chunk{ch: ch, st: st, d: c.d[:0], cum: c.cum[:0], wf: s.l.writerField, pos: -1}
	return c
}

func (s *shard) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take removes up to MaxRoundBytes of chunks from the queue (at least
// one), all of one writer field (chunks replayed from an old spool come
// first, in rounds of their own: a round orders a channel's entries by
// the sequence numbers of one writer). s.mu is held.
func (s *shard) take(dst []*chunk) []*chunk {
	size := 0
	n := 0
	for n < len(s.queue) && (n == 0 || size+len(s.queue[n].d) <= s.l.cfg.MaxRoundBytes && s.queue[n].wf == s.queue[0].wf) {
		c := s.queue[n]
		size += len(c.d)
		if c.st.open == c {
			c.st.open = nil
		}
		n++
	}
	if s.spool != nil {
		for _, c := range s.queue[:n] {
			if c.pos >= 0 {
				s.roundPos = c.pos
				break
			}
		}
	}
	dst = append(dst, s.queue[:n]...)
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = s.queue[:0:0]
	}
	return dst
}

// writeLoop is the shard's writer: it takes queued chunks every
// FlushInterval (or at once when FlushMessages are pending) and writes
// them in one pipelined round, retrying until they are written.
func (s *shard) writeLoop() {
	defer s.l.wg.Done()
	defer close(s.exited)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var round []*chunk
	for {
		select {
		case <-s.l.stop:
			s.mu.Lock()
			lost := s.take(nil)
			for len(s.queue) > 0 {
				lost = s.take(lost)
			}
			s.mu.Unlock()
			s.finish(lost, lost)
			return
		default:
		}
		s.mu.Lock()
		empty := len(s.queue) == 0
		pending := s.pendingMsgs
		s.mu.Unlock()
		closing := false
		select {
		case <-s.closing:
			closing = true
		default:
		}
		if empty {
			if closing {
				return
			}
			select {
			case <-s.wake:
			case <-s.closing:
			case <-s.l.stop: // a crash (test hook) skips closing
			}
			continue
		}
		if !closing && pending < s.l.cfg.FlushMessages {
			timer.Reset(s.l.cfg.FlushInterval)
			select {
			case <-timer.C:
			case <-s.full:
				timer.Stop()
			case <-s.closing:
				timer.Stop()
			case <-s.l.stop:
				timer.Stop()
			}
		}
		s.mu.Lock()
		round = s.take(round[:0])
		s.mu.Unlock()
		s.writeRound(round)
	}
}

// writeRound writes chunks, retrying until all are written (or given up
// after repeated non-retryable errors, or at the close deadline).
func (s *shard) writeRound(round []*chunk) {
	s.roundStart.Store(time.Now().UnixNano())
	defer s.roundStart.Store(0)
	todo := round
	backoff := 10 * time.Millisecond
	for {
		var err error
		todo, err = s.exec(todo)
		if len(todo) == 0 {
			break
		}
		if goredis.HasErrorPrefix(err, "NOSCRIPT") || strings.Contains(errString(err), "NOSCRIPT") {
			// A restarted (or new) server: load the script and retry.
			ctx, cancel := context.WithTimeout(s.l.ctx, 5*time.Second)
			err = appendScript.Load(ctx, s.client).Err()
			cancel()
			if err == nil {
				continue
			}
		}
		inc(s.m.writeErrors, 1)
		s.stats.writeErrors.Add(1)
		s.healthy.Store(false)
		if time.Since(s.lastErrAt) > 5*time.Second {
			s.lastErrAt = time.Now()
			s.l.log.Warn().Err(err).Str("shard", redactURL(s.url)).Int("chunks", len(todo)).Msg("writing channel logs failed; retrying")
		}
		todo = s.dropPoison(todo)
		if len(todo) == 0 {
			break
		}
		select {
		case <-time.After(backoff):
		case <-s.l.stop:
			// Past the close deadline: give up what is left.
			s.finish(round, todo)
			return
		}
		backoff = min(backoff*2, time.Second)
	}
	s.healthy.Store(true)
	s.finish(round, nil)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// dropPoison gives up chunks that failed with a non-retryable error ten
// times: a poisoned key must not stop the shard.
func (s *shard) dropPoison(todo []*chunk) []*chunk {
	out := todo[:0]
	for _, c := range todo {
		if c.attempts >= 10 {
			inc(s.m.dropped, c.n)
			s.stats.dropped.Add(int64(c.n))
			s.l.lost.Add(int64(c.n))
			s.l.log.Error().Str("channel_id", c.ch).Int("messages", c.n).Msg("dropping messages after repeated write errors")
			continue
		}
		out = append(out, c)
	}
	return out
}

// exec sends one pipelined round of append scripts and returns the chunks
// that were not written, with an error describing why.
func (s *shard) exec(todo []*chunk) ([]*chunk, error) {
	l := s.l
	nowT := l.cfg.Now()
	size := 0
	for _, c := range todo {
		size += len(c.d)
	}
	timeout := l.cfg.WriteTimeout + time.Duration(size>>20)*time.Second
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	defer cancel()
	// An entry waits for the entry before it of its channel in this round
	// only while that one is not acknowledged: an acknowledged entry may
	// have gone with a log that was lost since, and an entry not
	// acknowledged must go first whether or not the log still exists.
	clear(s.prevSeq)
	for _, c := range todo {
		c.prev = s.prevSeq[c.ch]
		s.prevSeq[c.ch] = c.seq
	}
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(todo))
	expire := int64(0)
	if l.cfg.Expire > 0 {
		expire = l.cfg.Expire.Milliseconds()
	}
	window := l.cfg.DedupWindow.Microseconds()
	for i, c := range todo {
		r := l.retention(c.ch)
		var cutoff int64
		if r.Age > 0 {
			cutoff = nowT.Add(-r.Age).UnixNano()
		}
		stream, idx, meta := logKeys(c.ch)
		var key []byte
		if c.keyed {
			key = c.key[:]
		}
		cmds[i] = appendScript.EvalSha(ctx, pipe, []string{stream, idx, meta, keysKey(c.ch)},
			c.wf, c.seq, c.prev, l.newEpoch(), c.n, c.bytes, c.tmin, c.tmax, c.d, c.cum,
			r.Count, r.Bytes, cutoff, r.Keep, expire, nowT.UnixMicro(), key, window, l.cfg.DedupMaxKeys)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		s.afterWrite(todo, cmds)
		return nil, nil
	}
	var firstErr error
	rest := todo[:0:0]
	var ok []*chunk
	var okCmds []*goredis.Cmd
	for i, c := range todo {
		if e := cmds[i].Err(); e != nil {
			if firstErr == nil {
				firstErr = e
			}
			if !isRetryable(e) && !strings.HasPrefix(e.Error(), "ORDER") {
				c.attempts++
			}
			rest = append(rest, c)
			continue
		}
		ok = append(ok, c)
		okCmds = append(okCmds, cmds[i])
	}
	s.afterWrite(ok, okCmds)
	if firstErr == nil {
		firstErr = err
	}
	return rest, firstErr
}

// afterWrite tells the follower about new epochs created by these writes
// and marks the keyed chunks that were not stored (duplicates).
func (s *shard) afterWrite(done []*chunk, cmds []*goredis.Cmd) {
	for i, c := range done {
		vals, _ := cmds[i].Slice()
		if len(vals) == 2 {
			switch first, _ := vals[1].(int64); first {
			case 1:
				epoch, _ := vals[0].(string)
				s.fol.epochChanged(c.ch, epoch)
			case -1:
				c.dup = true
				inc(s.m.duplicates, 1)
				s.stats.duplicates.Add(1)
			}
		}
	}
}

// finish releases the buffer space of a round; lost are chunks that were
// given up at the close deadline: dropped, or kept in the spool for the
// next start.
func (s *shard) finish(round, lost []*chunk) {
	for _, c := range lost {
		if s.spool != nil {
			s.l.kept.Add(int64(c.n))
			continue
		}
		inc(s.m.dropped, c.n)
		s.stats.dropped.Add(int64(c.n))
		s.l.lost.Add(int64(c.n))
	}
	var msgs, stored int
	now := s.l.cfg.Now().UnixNano()
	var remove []string
	var oldDone []*spoolSeg
	// Once stopping, a round given up may have left chunks of this run
	// unwritten outside the queue: the spool keeps everything.
	keep := len(lost) > 0 || s.stopping()
	s.mu.Lock()
	for _, c := range round {
		if c.seg != nil && !keep {
			s.replayLeft.Add(-1)
			if c.seg.pending.Add(-1) == 0 {
				oldDone = append(oldDone, c.seg)
			}
		}
		c.seg = nil
		st := c.st
		st.written += uint64(c.n)
		if st.written == st.admitted && st.open == nil && s.chans[c.ch] == st {
			delete(s.chans, c.ch)
		}
		s.bytes -= int64(len(c.d))
		s.pendingMsgs -= c.n
		msgs += c.n
		if !c.dup {
			stored += c.n
		}
		s.written[c.ch] = now
		c.st = nil
		if size := int64(cap(c.d) + cap(c.cum)); cap(c.d) <= 2*s.l.cfg.MaxEntryBytes && s.freeBytes+size <= maxFreeBytes {
			s.free = append(s.free, c)
			s.freeBytes += size
		}
	}
	s.roundPos = -1
	if s.spool != nil && !keep {
		remove = s.spool.truncate(s.unwrittenPos(), remove)
	}
	close(s.space)
	s.space = make(chan struct{})
	close(s.progress)
	s.progress = make(chan struct{})
	setGauge(s.m.bufferBytes, s.bytes)
	s.mu.Unlock()
	inc(s.m.flushes, 1)
	inc(s.m.written, stored)
	s.stats.flushes.Add(1)
	s.stats.written.Add(int64(stored))
	clear(round)
	s.l.removeSegments(remove)
	for _, seg := range oldDone {
		s.l.dropSegment(seg)
	}
}

// barrier waits until the messages of channelID admitted before the call
// are written, unless the shard is failing or ctx ends first.
func (s *shard) barrier(ctx context.Context, channelID string) {
	s.mu.Lock()
	st := s.chans[channelID]
	if st == nil {
		s.mu.Unlock()
		return
	}
	target := st.admitted
	for st.written < target && s.healthy.Load() {
		p := s.progress
		s.mu.Unlock()
		select {
		case <-p:
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
}

// unwrittenPos returns the spool position of the oldest message of this
// run not written to Redis yet: that of the round in flight, else of the
// first queued chunk of this run (chunks are queued in spool order), else
// the spool's end. s.mu is held.
func (s *shard) unwrittenPos() int64 {
	if s.roundPos >= 0 {
		return s.roundPos
	}
	for _, c := range s.queue {
		if c.pos >= 0 {
			return c.pos
		}
	}
	return s.spool.end
}

// stopping reports whether the Log is past its close deadline (or
// crashed).
func (s *shard) stopping() bool {
	select {
	case <-s.l.stop:
		return true
	default:
		return false
	}
}

// durable waits until the messages of channelID admitted before the call
// are written to Redis or, while the shard is failing, fsynced in the
// spool. It returns channels.ErrLogFull when ctx ends first. The shard has
// a spool.
func (s *shard) durable(ctx context.Context, channelID string) error {
	p := s.spool
	var recheck *time.Timer
	defer func() {
		if recheck != nil {
			recheck.Stop()
		}
	}()
	s.mu.Lock()
	st := s.chans[channelID]
	if st == nil {
		s.mu.Unlock()
		return nil
	}
	target, pos := st.admitted, p.end
	for {
		if st.written >= target {
			s.mu.Unlock()
			return nil
		}
		if !s.isHealthy() {
			if p.synced >= pos {
				s.mu.Unlock()
				return nil
			}
			p.syncWanted = true
			p.signal()
		}
		progress, synced := s.progress, p.syncedCh
		s.mu.Unlock()
		// The shard may turn unhealthy without a round ending (a round
		// in flight for long): look again now and then.
		if recheck == nil {
			recheck = time.NewTimer(100 * time.Millisecond)
		} else {
			recheck.Reset(100 * time.Millisecond)
		}
		select {
		case <-progress:
		case <-synced:
		case <-recheck.C:
		case <-ctx.Done():
			return channels.ErrLogFull
		case <-s.l.stop:
			return channels.ErrClosed
		}
		s.mu.Lock()
	}
}

// flush waits until everything queued before the call is written.
func (s *shard) flush(ctx context.Context) error {
	s.mu.Lock()
	targets := make(map[*chanState]uint64, len(s.chans))
	for _, st := range s.chans {
		targets[st] = st.admitted
	}
	for {
		done := true
		for st, t := range targets {
			if st.written < t {
				done = false
				break
			}
		}
		if done {
			s.mu.Unlock()
			return nil
		}
		p := s.progress
		s.mu.Unlock()
		s.signal()
		select {
		case <-p:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
}

// closeWriter makes the writer write everything and exit, waiting until
// ctx is done at most.
func (s *shard) closeWriter(ctx context.Context) {
	close(s.closing)
	select {
	case <-s.exited:
	case <-ctx.Done():
	}
}

// sweep applies retention to channels whose retention changed, and age
// bounds to channels this node wrote to.
func (s *shard) sweep() {
	l := s.l
	now := l.cfg.Now()
	s.mu.Lock()
	var names []string
	for ch := range s.retrim {
		names = append(names, ch)
	}
	s.retrim = nil
	nRetrim := len(names)
	for ch, at := range s.written {
		if l.cfg.Expire > 0 && now.UnixNano()-at > int64(l.cfg.Expire) {
			delete(s.written, ch)
			continue
		}
		if l.retention(ch).Age > 0 {
			names = append(names, ch)
		}
	}
	s.mu.Unlock()
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
	defer cancel()
	pipe := s.client.Pipeline()
	for _, ch := range names {
		r := l.retention(ch)
		var cutoff int64
		if r.Age > 0 {
			cutoff = now.Add(-r.Age).UnixNano()
		}
		stream, idx, meta := logKeys(ch)
		trimScript.EvalSha(ctx, pipe, []string{stream, idx, meta}, r.Count, r.Bytes, cutoff, r.Keep)
	}
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return
	}
	if len(cmds) > 0 && goredis.HasErrorPrefix(cmds[0].Err(), "NOSCRIPT") {
		trimScript.Load(ctx, s.client)
	}
	// Try the changed retentions again next time (age sweeps repeat anyway).
	s.mu.Lock()
	if s.retrim == nil {
		s.retrim = map[string]struct{}{}
	}
	for _, ch := range names[:nRetrim] {
		s.retrim[ch] = struct{}{}
	}
	s.mu.Unlock()
}
