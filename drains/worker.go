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
// survives a worker restart (URL change): the next worker continues from
// its position. The running worker is its only writer (it changes pos
// under mu too), Status reads it under mu.
type drainState struct {
	id      int64
	channel string
	met     *drainMetrics

	mu          sync.Mutex
	pos         position
	delivered   uint64
	dropped     uint64
	lastErr     string
	lastErrAt   time.Time
	lastOK      time.Time
	caughtUp    bool
	oldest      int64 // ingest time (Unix ns) of the oldest undelivered record, 0: none known
	lagMessages uint64
	lagAt       time.Time // when lagMessages was computed

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
// manager and stopped by cancelling its context, or, on Shutdown, by
// stopFollowing: it then stops once it has delivered what the log holds.
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
	// follow is ctx, also cancelled by stopFollowing: the worker waits
	// for new messages under it only.
	follow        context.Context
	stopFollowing context.CancelFunc

	forget atomic.Bool // stop for good: delete the drain's metrics
	gone   atomic.Bool // the drain was deleted: do not store its cursor

	out  transport
	f    *format
	recs channels.Records
	b    batch
	msg  []byte // L14 scratch

	lagAt time.Time
}

func (w *worker) run() {
	defer close(w.done)
	if w.prev != nil {
		<-w.prev.done // it stores the position this worker starts from
	}
	w.out, w.f = newTransport(&w.m.cfg, w.drain, w.url)
	w.setOptions()
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
	pos := &w.st.pos
	for w.ctx.Err() == nil {
		from, exactly := pos.next()
		lim, maxBytes := limit, w.f.target
		if exactly > 0 {
			// The batch a previous owner had in flight: exactly its records.
			lim, maxBytes = int(min(exactly, 1<<20)), 0
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
			w.skip(res)
			w.setCaughtUp()
			if w.follow.Err() != nil {
				break // shutting down, and everything is delivered
			}
			w.wait(res.Next)
			continue
		}
		now := w.m.now()
		w.st.mu.Lock()
		lost, since := pos.loss()
		pos.built()
		w.st.caughtUp = false
		if w.recs.Len() > 0 {
			w.st.oldest = w.recs.At(0).Time
		}
		w.st.mu.Unlock()
		w.b.build(w.f, from, &w.recs, res, lost, since, now)
		if !w.b.send() {
			w.complete(outOK) // only unparseable or filtered records
			continue
		}
		w.intend()
		o, ok := w.deliver()
		if !ok {
			break // stopping: the batch is abandoned, its position not acknowledged
		}
		w.complete(o)
	}
}

// load sets the starting position, unless the state has one (a restarted
// worker continues where the previous one stopped): the stored one, or,
// for a new drain, the end of the log (stored at once).
func (w *worker) load() bool {
	st := w.st
	if st.pos.loaded() {
		return true
	}
	for k := 0; ; k++ {
		c, err := w.m.Store.DrainCursor(w.ctx, w.drain.ID)
		if err == nil && c.Offset == 0 {
			var info channels.LogInfo
			if info, err = w.m.Log.Info(w.ctx, w.drain.ChannelID); err == nil {
				c = initialCursor(info)
				err = w.m.Store.SetDrainCursor(w.ctx, w.drain.ID, c)
			}
		}
		if err == nil {
			st.mu.Lock()
			st.pos.load(c, w.m.now())
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
	if b.filtered > 0 {
		met.filtered.Add(float64(b.filtered))
	}
	if b.missed > 0 {
		met.droppedRetention.Add(float64(b.missed))
	}
	st.mu.Lock()
	st.dropped += b.missed
	switch {
	case o == outOK && b.frames > 0:
		st.delivered += uint64(b.data)
	case o == outRejected:
		st.dropped += uint64(b.data)
	}
	st.pos.done(b, o, now)
	st.oldest = 0 // known again at the next read
	st.mu.Unlock()
	if o == outOK {
		met.delivered.Add(float64(b.data))
	} else {
		met.droppedRejected.Add(float64(b.data))
	}
	w.storeIfDue(now)
	w.updateLag(false)
}

// intend stores, before the batch is sent, the position it starts from and
// how many records it holds (position.intent). That one write acknowledges
// the previous batch and describes the one in flight, so a worker that
// takes the drain over (after a crash, or on another node) re-sends
// exactly this batch under the same Logplex-Frame-Id: duplicates stay
// limited to the unacknowledged batch and receivers can drop them by id. A
// failed write does not stop delivery (delivery stays at least once).
func (w *worker) intend() {
	st := w.st
	c, ok := st.pos.intent(&w.b)
	if !ok {
		return
	}
	if err := w.m.Store.SetDrainCursor(w.ctx, w.drain.ID, c); err != nil {
		if w.ctx.Err() == nil {
			w.failed("store position", err, false)
		}
		return
	}
	st.mu.Lock()
	st.pos.intended(c, w.m.now())
	st.mu.Unlock()
}

// skip moves the position without a delivery (an empty read that moved
// it, e.g. to a new epoch).
func (w *worker) skip(res channels.ReadResult) {
	st := w.st
	st.mu.Lock()
	moved := st.pos.skip(res)
	st.mu.Unlock()
	if moved {
		w.storeIfDue(w.m.now())
	}
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
	oldest, cur := st.oldest, st.pos.acked
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

// wait blocks until the log has a message at next (or a new history: the
// epoch of next, the one read in, goes to every Wait, so that a restart
// between the read and a Wait still wakes it), storing a pending position
// when it is due.
func (w *worker) wait(next channels.Cursor) {
	pos := &w.st.pos
	for {
		ctx, cancel := w.follow, context.CancelFunc(func() {})
		if !pos.holds() {
			due := pos.dueIn(w.m.now(), w.m.cfg.CursorEvery)
			ctx, cancel = context.WithTimeout(w.follow, max(due, 0))
		}
		err := w.m.Log.Wait(ctx, w.drain.ChannelID, next)
		cancel()
		switch {
		case err == nil || w.follow.Err() != nil:
			return
		case ctx.Err() != nil:
			w.storeIfDue(w.m.now())
			if !pos.holds() {
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

// storeIfDue stores the acknowledged position when it is due
// (position.due).
func (w *worker) storeIfDue(now time.Time) {
	st := w.st
	c, ok := st.pos.due(now, w.m.cfg.CursorEvery)
	if !ok {
		return
	}
	if err := w.m.Store.SetDrainCursor(w.ctx, w.drain.ID, c); err != nil {
		if w.ctx.Err() == nil {
			w.failed("store position", err, false)
		}
		return
	}
	st.mu.Lock()
	st.pos.wrote(c, now)
	st.mu.Unlock()
}

// storeFinal stores the position when the worker stops.
func (w *worker) storeFinal() {
	st := w.st
	c, ok := st.pos.final()
	if w.gone.Load() || !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.m.cfg.RequestTimeout)
	defer cancel()
	if err := w.m.Store.SetDrainCursor(ctx, w.drain.ID, c); err != nil {
		w.log.Error().Err(err).Msg("store drain position on stop")
		return
	}
	st.mu.Lock()
	st.pos.wrote(c, w.m.now())
	st.mu.Unlock()
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
