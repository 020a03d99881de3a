package drains

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/stats"
)

// Ownership says which drains this node delivers (cluster leases). A nil
// Ownership owns every drain.
type Ownership interface {
	Owns(drainID int64) bool
	// Changed receives a value when ownership may have changed.
	Changed() <-chan struct{}
}

// reconcileEvery is how often the manager compares its workers with the
// store even without a change signal.
const reconcileEvery = 5 * time.Second

// Manager runs one delivery worker per drain with a destination that this
// node owns. Set the fields, then call Run; stop it with Shutdown (or by
// cancelling Run's context).
type Manager struct {
	Config    Config
	Store     channels.Store
	Log       channels.Log
	Ownership Ownership       // nil: every drain
	Logger    zerolog.Logger  //
	Metrics   *Metrics        // nil: unregistered metrics
	Stats     *stats.Registry // nil: filtered messages are not counted per source

	cfg     Config
	metrics *Metrics
	now     func() time.Time // clock for L10/L14 times and status (tests fix it)
	every   time.Duration    // reconcile interval

	mu       sync.Mutex
	states   map[int64]*drainState         // drains with a running worker
	last     map[int64]*worker             // each drain's newest worker, until it is done
	workers  map[int64]*worker             // running workers (Run's goroutine only)
	retained map[string]channels.Retention // channels whose retention we set, and to what
	retMu    sync.Mutex                    // serializes applyRetention
	ignored  map[int64]string              // unsupported URLs already logged
	wg       sync.WaitGroup

	// Shutdown (guarded by mu): shut is closed when it starts, abort when
	// its context ends, done when Run returned.
	running, shutting bool
	shut, abort, done chan struct{}
}

// signals returns the shutdown channels, made on first use.
func (m *Manager) signals() (shut, abort, done chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shut == nil {
		m.shut, m.abort, m.done = make(chan struct{}), make(chan struct{}), make(chan struct{})
	}
	return m.shut, m.abort, m.done
}

// Shutdown stops delivery gracefully: the manager stops following the
// store and ownership, and each worker delivers what its channel's log
// holds, stores its position and stops. When ctx ends first, the workers
// stop after the request in flight (at most RequestTimeout) and store
// their positions; what is undelivered stays in the log for the next run.
// Shutdown returns once Run has returned (at once if Run was not called;
// a later Run returns at once): ctx.Err() when the deadline cut delivery
// short, nil otherwise.
func (m *Manager) Shutdown(ctx context.Context) error {
	shut, abort, done := m.signals()
	m.mu.Lock()
	first, running := !m.shutting, m.running
	m.shutting = true
	m.mu.Unlock()
	if first {
		close(shut)
	}
	if !running {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	m.mu.Lock()
	select {
	case <-abort:
	default:
		close(abort)
	}
	m.mu.Unlock()
	<-done
	return ctx.Err()
}

// Run delivers drains until Shutdown (see there) or until ctx is done;
// then it stops every worker (each finishes or abandons its request in
// flight within RequestTimeout and stores its position) and returns nil.
func (m *Manager) Run(ctx context.Context) error {
	shut, abort, done := m.signals()
	m.mu.Lock()
	if m.running || m.shutting {
		m.mu.Unlock()
		return nil // running already, or shut down before it ran
	}
	m.running = true
	m.mu.Unlock()
	defer close(done)
	m.init()
	changes := m.Store.Changes()
	var owned <-chan struct{}
	if m.Ownership != nil {
		owned = m.Ownership.Changed()
	}
	tick := time.NewTicker(m.every)
	defer tick.Stop()
	m.reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			m.stopAll()
			return nil
		case <-shut:
			m.finish(ctx, abort)
			return nil
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
		case _, ok := <-owned:
			if !ok {
				owned = nil
				continue
			}
		case <-tick.C:
		}
		m.reconcile(ctx)
	}
}

func (m *Manager) init() {
	m.cfg = m.Config.withDefaults()
	m.metrics = m.Metrics
	if m.metrics == nil {
		m.metrics = NewMetrics(nil)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.every <= 0 {
		m.every = reconcileEvery
	}
	m.mu.Lock()
	m.states = make(map[int64]*drainState)
	m.last = make(map[int64]*worker)
	m.mu.Unlock()
	m.workers = make(map[int64]*worker)
	m.retMu.Lock()
	if m.retained == nil {
		m.retained = make(map[string]channels.Retention)
	}
	m.retMu.Unlock()
	m.ignored = make(map[int64]string)
}

type wanted struct {
	drain channels.Drain
	url   channels.DrainURL
}

// reconcile starts, restarts and stops workers to match the store and
// ownership, and keeps drain retention on the channels that have drains.
func (m *Manager) reconcile(ctx context.Context) {
	drains, err := m.Store.Drains(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.Logger.Error().Err(err).Msg("list drains")
		}
		return
	}
	exists := make(map[int64]bool, len(drains))
	want := make(map[int64]wanted, len(drains))
	chans := make(map[string]bool)
	unsupported := 0
	for _, d := range drains {
		exists[d.ID] = true
		if d.URL == "" {
			continue
		}
		u, err := channels.ParseDrainURL(d.URL)
		if err != nil {
			unsupported++
			if m.ignored[d.ID] != d.URL {
				m.ignored[d.ID] = d.URL
				m.Logger.Warn().Int64("drain_id", d.ID).Str("channel_id", d.ChannelID).Err(err).
					Msg("drain destination not supported: ignored")
			}
			continue
		}
		delete(m.ignored, d.ID)
		chans[d.ChannelID] = true
		if m.Ownership != nil && !m.Ownership.Owns(d.ID) {
			continue
		}
		want[d.ID] = wanted{d, u}
	}
	for id := range m.ignored {
		if !exists[id] {
			delete(m.ignored, id)
		}
	}
	m.metrics.unsupported.Set(float64(unsupported))

	for id, w := range m.workers {
		if wd, ok := want[id]; ok && wd.drain.URL == w.drain.URL && wd.drain.DrainOptions == w.drain.DrainOptions {
			continue
		} else if ok {
			w.log.Info().Msg("drain destination or options changed: restarting")
			w.cancel() // restarted below with the same state
		} else {
			w.forget.Store(true)
			w.gone.Store(!exists[id])
			w.cancel()
			m.mu.Lock()
			delete(m.states, id)
			m.mu.Unlock()
		}
		delete(m.workers, id)
	}
	for id, wd := range want {
		if _, ok := m.workers[id]; !ok {
			m.start(wd)
		}
	}

	m.applyRetention(ctx, chans)
}

func (m *Manager) start(wd wanted) {
	d := wd.drain
	m.mu.Lock()
	st := m.states[d.ID]
	if st == nil {
		st = &drainState{id: d.ID, channel: d.ChannelID, met: m.metrics.forDrain(d.ID),
			stateLog: zerolog.BurstSampler{Burst: 1, Period: stateLogEvery}}
		m.states[d.ID] = st
	}
	ctx, cancel := context.WithCancel(context.Background())
	follow, stopFollowing := context.WithCancel(ctx)
	w := &worker{
		m: m, drain: d, url: wd.url, st: st, prev: m.last[d.ID],
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		follow: follow, stopFollowing: stopFollowing,
		log: m.Logger.With().Int64("drain_id", d.ID).Str("channel_id", d.ChannelID).
			Str("url", wd.url.URL.Redacted()).Logger(),
	}
	m.last[d.ID] = w
	m.mu.Unlock()
	m.workers[d.ID] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run()
		m.mu.Lock()
		if m.last[d.ID] == w {
			delete(m.last, d.ID)
		}
		m.mu.Unlock()
	}()
}

// finish lets every worker deliver what its log holds and stop, until ctx
// is done or abort is closed; then it stops the workers left.
func (m *Manager) finish(ctx context.Context, abort <-chan struct{}) {
	for _, w := range m.workers {
		w.stopFollowing()
	}
	finished := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
	case <-abort:
	}
	m.stopAll() // waits: the goroutine above ends too
}

func (m *Manager) stopAll() {
	for id, w := range m.workers {
		w.cancel()
		delete(m.workers, id)
	}
	m.wg.Wait()
}

// Status describes the delivery of drain id by this node (false when this
// node does not deliver it).
func (m *Manager) Status(id int64) (channels.DrainStatus, bool) {
	m.mu.Lock()
	st := m.states[id]
	m.mu.Unlock()
	if st == nil {
		return channels.DrainStatus{}, false
	}
	now := m.now()
	st.mu.Lock()
	s := channels.DrainStatus{
		Delivered:   st.delivered,
		Dropped:     st.dropped,
		LastError:   st.lastErr,
		LastErrorAt: st.lastErrAt,
		LastSuccess: st.lastOK,
		Node:        m.cfg.Node,
	}
	caughtUp, cur, oldest, lag, lagAt := st.caughtUp, st.pos.acked, st.oldest, st.lagMessages, st.lagAt
	st.mu.Unlock()
	if !caughtUp && cur.Offset != 0 {
		s.LagSeconds = lagSeconds(now, oldest)
		s.LagMessages = lag
		if now.Sub(lagAt) >= lagEvery {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if info, err := m.Log.Info(ctx, st.channel); err == nil {
				s.LagMessages = lagOf(info, cur)
			}
			cancel()
		}
		if s.LagMessages == 0 {
			s.LagSeconds = 0
		}
	}
	return s, true
}
