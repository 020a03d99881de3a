package drains

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/syslog"
)

// drainState is what the manager knows about one drain it delivers. It
// survives a worker restart (URL change); the running worker is its only
// writer, Status reads it under mu.
type drainState struct {
	id      int64
	channel string
	met     *drainMetrics

	mu           sync.Mutex
	cursor       channels.Cursor // acknowledged position
	known        bool            // cursor is loaded
	pending      uint64          // loss not yet reported by an L10 line
	pendingSince time.Time       //
	delivered    uint64
	dropped      uint64
	lastErr      string
	lastErrAt    time.Time
	lastOK       time.Time
	caughtUp     bool
	oldest       int64 // ingest time (Unix ns) of the oldest undelivered record, 0: none known
	lagMessages  uint64
	lagAt        time.Time // when lagMessages was computed

	// worker-only fields (no lock)
	down     bool
	l14Sent  bool
	stateLog zerolog.BurstSampler // "drain down"/"drain up": one line per stateLogEvery
}

const (
	stateLogEvery = 10 * time.Second
	lagEvery      = time.Second
	appendTimeout = 2 * time.Second
)

// worker delivers one drain to one destination. It is started by the
// manager and stopped by cancelling its context.
type worker struct {
	m     *Manager
	drain channels.Drain
	url   channels.DrainURL
	st    *drainState
	log   zerolog.Logger
	prev  *worker // the drain's previous worker: must be done first

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	forget atomic.Bool // stop for good: delete the drain's metrics
	gone   atomic.Bool // the drain was deleted: do not store its cursor

	out  transport
	f    *format
	recs channels.Records
	b    batch
	msg  []byte // L14 scratch

	cur      channels.Cursor // acknowledged position (mirrors st.cursor)
	stored   channels.Cursor // last stored position
	resend   uint64          // records of a stored in-flight batch to re-send first
	storedAt time.Time
	lagAt    time.Time
}

func (w *worker) run() {
	defer close(w.done)
	if w.prev != nil {
		<-w.prev.done // it stores the position this worker starts from
	}
	w.out, w.f = newTransport(&w.m.cfg, w.drain, w.url)
	defer func() {
		w.out.close()
		w.storeFinal()
		if w.forget.Load() {
			w.m.metrics.forget(w.drain.ID)
		}
	}()
	if !w.load() {
		return
	}
	cfg := &w.m.cfg
	limit := cfg.BatchBytes/32 + 16
	failures := 0
	for w.ctx.Err() == nil {
		from := w.cur
		lim, maxBytes := limit, w.f.target
		if w.resend > 0 {
			// The batch a previous owner had in flight: exactly its records.
			lim, maxBytes = int(min(w.resend, 1<<20)), 0
		}
		res, err := w.m.Log.Read(w.ctx, w.drain.ChannelID, from, lim, maxBytes, &w.recs)
		if err != nil {
			if w.ctx.Err() != nil {
				break
			}
			w.failed("read log", err, false)
			if !w.sleep(cfg.backoff(failures)) {
				break
			}
			failures++
			continue
		}
		failures = 0
		if res.Reset && from.Epoch != "" {
			w.log.Warn().Str("old_epoch", from.Epoch).Str("epoch", res.Epoch).Uint64("missed", res.Missed).
				Msg("channel log history restarted: undelivered messages of the old epoch are lost")
		}
		if w.recs.Len() == 0 && res.Missed == 0 {
			if res.Next != w.cur {
				w.advance(res.Next)
			}
			w.setCaughtUp()
			w.wait(res.Next.Offset)
			continue
		}
		now := w.m.now()
		w.st.mu.Lock()
		pending, since := w.st.pending, w.st.pendingSince
		w.st.caughtUp = false
		if w.recs.Len() > 0 {
			w.st.oldest = w.recs.At(0).Time
		}
		w.st.mu.Unlock()
		w.b.build(w.f, from, &w.recs, res, pending, since, now)
		w.resend = 0
		if !w.b.send() {
			w.complete(outOK) // only unparseable records
			continue
		}
		w.intend(from)
		o, ok := w.deliver()
		if !ok {
			break // stopping: the batch is abandoned, its position not acknowledged
		}
		w.complete(o)
	}
}

// load sets the starting position: the state's (a restarted worker), the
// stored one, or, for a new drain, the end of the log (stored at once).
func (w *worker) load() bool {
	st := w.st
	st.mu.Lock()
	c, known := st.cursor, st.known
	st.mu.Unlock()
	if known {
		w.cur = c
		w.stored, w.storedAt = c, w.m.now()
		return true
	}
	defer func() {
		// A stored batch in flight is re-sent first, as it was (see intend).
		w.resend, w.cur.Pending = w.cur.Pending, 0
	}()
	for k := 0; ; k++ {
		c, err := w.m.Store.DrainCursor(w.ctx, w.drain.ID)
		if err == nil && c.Offset == 0 {
			var info channels.LogInfo
			if info, err = w.m.Log.Info(w.ctx, w.drain.ChannelID); err == nil {
				c = channels.Cursor{Epoch: info.Epoch, Offset: info.Next}
				err = w.m.Store.SetDrainCursor(w.ctx, w.drain.ID, c)
			}
		}
		if err == nil {
			w.cur, w.stored, w.storedAt = c, c, w.m.now()
			st.mu.Lock()
			st.cursor, st.known = channels.Cursor{Epoch: c.Epoch, Offset: c.Offset}, true
			st.mu.Unlock()
			return true
		}
		if w.ctx.Err() != nil {
			return false
		}
		w.failed("load position", err, false)
		if !w.sleep(w.m.cfg.backoff(k)) {
			return false
		}
	}
}

// deliver sends the batch until it is acknowledged or rejected (true), or
// the worker stops (false).
func (w *worker) deliver() (outcome, bool) {
	met := w.st.met
	for k := 0; ; k++ {
		if w.ctx.Err() != nil {
			return outError, false
		}
		o, err := w.out.attempt(w.ctx, &w.b)
		switch o {
		case outOK:
			met.reqOK.Inc()
			w.succeeded()
			return o, true
		case outRejected:
			met.reqRejected.Inc()
			w.failed("rejected", err, false)
			return o, true
		case outRetry:
			met.reqRetry.Inc()
		default:
			met.reqError.Inc()
		}
		if w.ctx.Err() != nil {
			return o, false // the request failed because we stop: not the endpoint's fault
		}
		w.failed("deliver", err, true)
		if reason, ok := certError(err); ok {
			w.l14(reason)
		}
		w.updateLag(false)
		if !w.sleep(w.m.cfg.backoff(k)) {
			return o, false
		}
	}
}

// complete accounts for a finished batch (acknowledged or rejected) and
// moves the position past it.
func (w *worker) complete(o outcome) {
	b, st, met := &w.b, w.st, w.st.met
	now := w.m.now()
	if b.unparseable > 0 {
		met.droppedUnparseable.Add(float64(b.unparseable))
	}
	if b.missed > 0 {
		met.droppedRetention.Add(float64(b.missed))
	}
	st.mu.Lock()
	st.dropped += b.missed
	switch {
	case o == outOK && b.frames > 0:
		st.delivered += uint64(b.data)
		if b.l10 > 0 {
			st.pending, st.pendingSince = 0, time.Time{}
		}
	case o == outRejected:
		st.dropped += uint64(b.data)
		if st.pending == 0 && b.missed == 0 {
			st.pendingSince = now
		} else if b.l10 > 0 {
			st.pendingSince = b.l10Since
		}
		st.pending += b.missed + uint64(b.data)
	}
	st.cursor = b.next
	st.oldest = 0 // known again at the next read
	st.mu.Unlock()
	if o == outOK {
		met.delivered.Add(float64(b.data))
	} else {
		met.droppedRejected.Add(float64(b.data))
	}
	w.cur = b.next
	w.storeIfDue(now)
	w.updateLag(false)
}

// intend stores, before a batch is sent, the position it starts from and
// how many records it holds. That one write acknowledges the previous batch
// and describes the one in flight, so a worker that takes the drain over
// (after a crash, or on another node) re-sends exactly this batch under
// the same Logplex-Frame-Id: duplicates stay limited to the unacknowledged
// batch and receivers can drop them by id. A failed write does not stop
// delivery (delivery stays at least once).
func (w *worker) intend(from channels.Cursor) {
	b := &w.b
	start := from.Offset
	if start == 0 || (from.Epoch != "" && from.Epoch != b.next.Epoch) {
		start = b.first
	}
	if b.next.Offset < start {
		return
	}
	c := channels.Cursor{Epoch: b.next.Epoch, Offset: start, Pending: b.next.Offset - start}
	if err := w.m.Store.SetDrainCursor(w.ctx, w.drain.ID, c); err != nil {
		if w.ctx.Err() == nil {
			w.failed("store position", err, false)
		}
		return
	}
	w.stored, w.storedAt = c, w.m.now()
	if w.cur.Offset == c.Offset && w.cur.Epoch == "" {
		// A position taken before the channel's log existed: it is the
		// batch's epoch now, as stored.
		w.cur.Epoch = c.Epoch
	}
}

// advance moves the position without a delivery (an empty read that moved
// it, e.g. to a new epoch).
func (w *worker) advance(c channels.Cursor) {
	w.cur = c
	w.st.mu.Lock()
	w.st.cursor = c
	w.st.mu.Unlock()
	w.storeIfDue(w.m.now())
}

func (w *worker) setCaughtUp() {
	st := w.st
	st.mu.Lock()
	was := st.caughtUp
	st.caughtUp, st.oldest, st.lagMessages = true, 0, 0
	st.mu.Unlock()
	if !was {
		st.met.lagMessages.Set(0)
		st.met.lagSeconds.Set(0)
	}
}

// updateLag refreshes the lag gauges at most every lagEvery (force: now).
func (w *worker) updateLag(force bool) {
	now := w.m.now()
	if !force && now.Sub(w.lagAt) < lagEvery {
		return
	}
	w.lagAt = now
	info, err := w.m.Log.Info(w.ctx, w.drain.ChannelID)
	st := w.st
	st.mu.Lock()
	oldest, cur := st.oldest, st.cursor
	if err == nil {
		st.lagMessages, st.lagAt = lagOf(info, cur), now
	}
	lag := st.lagMessages
	st.mu.Unlock()
	st.met.lagMessages.Set(float64(lag))
	st.met.lagSeconds.Set(lagSeconds(now, oldest))
}

func lagOf(info channels.LogInfo, c channels.Cursor) uint64 {
	switch {
	case c.Epoch != "" && info.Epoch != c.Epoch:
		return info.Next - info.First
	case info.Next > c.Offset:
		return info.Next - c.Offset
	}
	return 0
}

func lagSeconds(now time.Time, oldest int64) float64 {
	if oldest == 0 {
		return 0
	}
	d := now.Sub(time.Unix(0, oldest)).Seconds()
	return max(d, 0)
}

// wait blocks until the log has a message at next, storing a pending
// position when it is due.
func (w *worker) wait(next uint64) {
	for {
		ctx, cancel := w.ctx, context.CancelFunc(func() {})
		if !w.holds() {
			due := w.m.cfg.CursorEvery - w.m.now().Sub(w.storedAt)
			ctx, cancel = context.WithTimeout(w.ctx, max(due, 0))
		}
		err := w.m.Log.Wait(ctx, w.drain.ChannelID, next)
		cancel()
		switch {
		case err == nil || w.ctx.Err() != nil:
			return
		case ctx.Err() != nil:
			w.storeIfDue(w.m.now())
			if !w.holds() {
				// The store failed: wait a little before trying again.
				if !w.sleep(w.m.cfg.backoff(0)) {
					return
				}
			}
		default:
			w.failed("wait for log", err, false)
			w.sleep(w.m.cfg.backoff(0))
			return
		}
	}
}

func (w *worker) storeIfDue(now time.Time) {
	if w.holds() || now.Sub(w.storedAt) < w.m.cfg.CursorEvery {
		return
	}
	if err := w.m.Store.SetDrainCursor(w.ctx, w.drain.ID, w.cur); err != nil {
		if w.ctx.Err() == nil {
			w.failed("store position", err, false)
		}
		return
	}
	w.stored, w.storedAt = w.cur, now
}

// holds reports whether the stored position already says where the worker
// is: the same position, or the same position with the batch in flight
// from it (an intent, which must survive a stop that abandons the batch).
func (w *worker) holds() bool {
	return w.cur.Offset == w.stored.Offset && w.cur.Epoch == w.stored.Epoch
}

// storeFinal stores the position when the worker stops.
func (w *worker) storeFinal() {
	if w.gone.Load() || w.holds() || w.cur.Offset == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.m.cfg.RequestTimeout)
	defer cancel()
	if err := w.m.Store.SetDrainCursor(ctx, w.drain.ID, w.cur); err != nil {
		w.log.Error().Err(err).Msg("store drain position on stop")
		return
	}
	w.stored = w.cur
}

// sleep waits d or until the worker stops (false).
func (w *worker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// failed records an error; down marks a delivery failure (the endpoint is
// down until the next success).
func (w *worker) failed(op string, err error, down bool) {
	now := w.m.now()
	st := w.st
	msg := op
	if err != nil {
		msg = op + ": " + err.Error()
	}
	st.mu.Lock()
	st.lastErr, st.lastErrAt = msg, now
	st.mu.Unlock()
	if down && st.down {
		return
	}
	st.down = st.down || down
	log := w.log.Sample(&st.stateLog)
	ev := log.Warn().Err(err) // nil (a no-op) when sampled out
	if down {
		ev.Msg("drain down: " + op)
	} else {
		ev.Msg("drain: " + op)
	}
}

func (w *worker) succeeded() {
	st := w.st
	now := w.m.now()
	st.mu.Lock()
	st.lastOK = now
	st.mu.Unlock()
	st.l14Sent = false
	if st.down {
		st.down = false
		log := w.log.Sample(&st.stateLog)
		log.Info().Msg("drain up")
	}
}

// l14 appends an L14 notice to the drain's channel log, once per failure
// streak, so that tails and history show why the drain does not deliver.
func (w *worker) l14(reason string) {
	st := w.st
	if st.l14Sent {
		return
	}
	st.l14Sent = true
	now := w.m.now()
	w.msg = syslog.L14Message(w.msg[:0], w.drain.Token, reason, w.url.URL.Redacted(), now)
	b := &channels.Batch{ChannelID: w.drain.ChannelID, Time: now.UnixNano()}
	b.Add(w.msg)
	ctx, cancel := context.WithTimeout(w.ctx, appendTimeout)
	defer cancel()
	if err := w.m.Log.Append(ctx, []*channels.Batch{b}); err != nil {
		w.log.Error().Err(err).Msg("append L14 notice")
		return
	}
	st.met.l14.Inc()
	w.log.Warn().Str("reason", reason).Msg("drain certificate validation failed (L14)")
}
