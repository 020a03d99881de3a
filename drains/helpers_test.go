package drains

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
	"github.com/plexus-router/plexus/channels/stats"
)

// env is a store, a channel log and a running manager.
type env struct {
	t       testing.TB
	dir     string
	persist bool
	store   *embedded.Store
	log     channels.Log
	openLog func(t testing.TB) channels.Log // nil: MemLog
	reg     *prometheus.Registry
	m       *Manager
	cfg     Config
	own     Ownership
	stats   *stats.Registry // set before start
	cancel  context.CancelFunc
	done    chan struct{}
	ch      channels.Channel
	next    int // number of the next test message
}

// testConfig is a fast configuration for tests.
func testConfig() Config {
	return Config{
		BackoffMin:     2 * time.Millisecond,
		BackoffMax:     30 * time.Millisecond,
		ConnectTimeout: 2 * time.Second,
		RequestTimeout: 5 * time.Second,
		CursorEvery:    5 * time.Millisecond,
		UserAgent:      "Plexus/test",
		Node:           "node-1",
	}
}

func newEnv(t testing.TB, cfg Config) *env { return newEnvOn(t, cfg, nil) }

// newEnvOn uses the channel log that openLog returns (nil: a MemLog).
func newEnvOn(t testing.TB, cfg Config, openLog func(testing.TB) channels.Log) *env {
	e := &env{t: t, dir: t.TempDir(), cfg: cfg, openLog: openLog}
	e.open()
	ch, _, err := e.store.CreateChannel(context.Background(), "app", []string{"app"})
	if err != nil {
		t.Fatal(err)
	}
	e.ch = ch
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	var err error
	if e.store, err = embedded.OpenStore(e.dir); err != nil {
		e.t.Fatal(err)
	}
	if e.openLog != nil {
		e.log = e.openLog(e.t)
		return
	}
	lc := embedded.LogConfig{Dir: e.t.TempDir(), Default: channels.Retention{Count: 1500}}
	if e.persist {
		lc.Dir = filepath.Join(e.dir, "logs")
	}
	if e.log, err = embedded.OpenLog(lc); err != nil {
		e.t.Fatal(err)
	}
}

// start runs a new manager.
func (e *env) start() {
	e.reg = prometheus.NewRegistry()
	e.m = &Manager{
		Config:    e.cfg,
		Store:     e.store,
		Log:       e.log,
		Ownership: e.own,
		Logger:    zerolog.New(zerolog.NewTestWriter(e.t)).Level(zerolog.WarnLevel),
		Metrics:   NewMetrics(e.reg),
		Stats:     e.stats,
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		if err := e.m.Run(ctx); err != nil {
			e.t.Error(err)
		}
	}()
}

// stop stops the manager and waits for it.
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.cancel = nil
}

func (e *env) close() {
	e.stop()
	if e.store != nil {
		e.store.Close()
	}
	if e.log != nil {
		e.log.Close()
	}
	e.store, e.log = nil, nil
}

// reopen stops the manager, closes store and log, opens them again from the
// same directory and starts a new manager.
func (e *env) reopen() {
	e.close()
	e.open()
	e.start()
}

func (e *env) addDrain(url string) channels.Drain {
	e.t.Helper()
	d, err := e.store.CreateDrain(context.Background(), e.ch.ID, url, 0)
	if err != nil {
		e.t.Fatalf("CreateDrain(%q): %v", url, err)
	}
	return d
}

// msg is the MSG part of test message i.
func msg(i int) string { return fmt.Sprintf("message %06d", i) }

// rawMessage is test message i as stored in the log (cooked RFC 5424).
func rawMessage(i int) []byte {
	return []byte("<134>1 2024-01-02T03:04:05.000006Z myhost app web.1 - - " + msg(i))
}

// appendN appends n numbered messages in one batch.
func (e *env) appendN(n int) {
	e.t.Helper()
	b := &channels.Batch{ChannelID: e.ch.ID, Time: time.Now().UnixNano()}
	for range n {
		b.Add(rawMessage(e.next))
		e.next++
	}
	if err := e.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
		e.t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wantSeq checks that msgs are messages from..to-1 in order.
func wantSeq(t testing.TB, msgs []string, from, to int) {
	t.Helper()
	if len(msgs) != to-from {
		t.Errorf("got %d messages, want %d (%s)", len(msgs), to-from, summary(msgs))
	}
	for i, m := range msgs {
		if m != msg(from+i) {
			t.Fatalf("message %d = %q, want %q (%s)", i, m, msg(from+i), summary(msgs))
		}
	}
}

func summary(msgs []string) string {
	if len(msgs) <= 6 {
		return strings.Join(msgs, ", ")
	}
	return strings.Join(msgs[:3], ", ") + " … " + strings.Join(msgs[len(msgs)-3:], ", ")
}

// dedupeByFrame returns the messages of the acked requests, each request
// (frame id) once.
func dedupeByFrame(reqs []httpRequest) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range reqs {
		id := r.Header.Get("Logplex-Frame-Id")
		if r.Status/100 != 2 || seen[id] {
			continue
		}
		seen[id] = true
		for _, l := range r.Lines {
			if _, ok := l10Count(l.Msg); !ok {
				out = append(out, l.Msg)
			}
		}
	}
	return out
}

// ownership is a settable Ownership.
type ownership struct {
	mu      sync.Mutex
	owned   map[int64]bool
	changed chan struct{}
}

func newOwnership() *ownership {
	return &ownership{owned: map[int64]bool{}, changed: make(chan struct{}, 1)}
}

func (o *ownership) Owns(id int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.owned[id]
}

func (o *ownership) Changed() <-chan struct{} { return o.changed }

func (o *ownership) set(id int64, own bool) {
	o.mu.Lock()
	o.owned[id] = own
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

// waitStarted waits until the drain's worker stored its first position
// (messages appended after that are delivered).
func (e *env) waitStarted(d channels.Drain) {
	e.t.Helper()
	waitFor(e.t, "drain worker start", func() bool {
		c, err := e.store.DrainCursor(context.Background(), d.ID)
		return err == nil && c.Offset != 0
	})
}

// metric returns the value of the series of name with labels (false if
// there is none).
func (e *env) metric(name string, labels map[string]string) (float64, bool) {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// series counts the series that carry drain_id id.
func (e *env) series(id int64) int {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "drain_id" && lp.GetValue() == fmt.Sprint(id) {
					n++
				}
			}
		}
	}
	return n
}

// logMessages returns every message retained in the channel log.
func (e *env) logMessages() []string {
	e.t.Helper()
	var recs channels.Records
	var out []string
	from := channels.Cursor{}
	for {
		res, err := e.log.Read(context.Background(), e.ch.ID, from, 1000, 0, &recs)
		if err != nil {
			e.t.Fatal(err)
		}
		if recs.Len() == 0 {
			return out
		}
		for i := range recs.Len() {
			out = append(out, string(recs.At(i).Data))
		}
		from = res.Next
	}
}
