package drains

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestShutdownDeliversWhatTheLogHolds: Shutdown lets a worker with a
// request in flight and a backlog of many batches deliver all of it, store
// its position at the end of the log and stop; then Run returns.
func TestShutdownDeliversWhatTheLogHolds(t *testing.T) { forEachBackend(t, testShutdownDelivers) }

func testShutdownDelivers(t *testing.T, open logOpener) {
	cfg := testConfig()
	cfg.BatchBytes = 4096 // about 50 messages a request: the backlog is many batches
	e := newEnvOn(t, cfg, open)
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrain(r.url("/"))
	e.waitStarted(d)
	r.block()
	e.appendN(5)
	waitFor(t, "request in flight", func() bool { return r.arrivals() == 1 })
	e.appendN(1000)

	errc := make(chan error, 1)
	go func() { errc <- e.m.Shutdown(context.Background()) }()
	// The worker was told to stop once caught up before the receiver
	// answers: what it delivers from here on is the shutdown's doing.
	waitFor(t, "worker told to stop following", func() bool {
		e.m.mu.Lock()
		defer e.m.mu.Unlock()
		w := e.m.last[d.ID]
		return w != nil && w.follow.Err() != nil
	})
	r.release()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Shutdown = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	select {
	case <-e.done:
	default:
		t.Fatal("Shutdown returned before Run")
	}
	e.cancel = nil
	wantSeq(t, r.stream().msgs, 0, 1005)
	if n := len(r.requests()); n < 10 {
		t.Errorf("%d requests, want the backlog in many batches", n)
	}
	info, err := e.log.Info(context.Background(), e.ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := e.store.DrainCursor(context.Background(), d.ID); err != nil || c.Offset != info.Next || c.Pending != 0 {
		t.Errorf("stored position %+v, %v; want the end of the log, offset %d, nothing pending", c, err, info.Next)
	}
	r.check()
}

// TestShutdownDeadline: a drain whose endpoint is down keeps retrying until
// Shutdown's context ends; Shutdown then returns its error once Run has
// returned, and the undelivered messages are delivered by the next run.
func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t, testConfig())
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrain(r.url("/"))
	e.waitStarted(d)
	r.setRespond(func(int, *httpRequest) int { return 503 })
	e.appendN(10)
	waitFor(t, "a failed attempt", func() bool { s, _ := e.m.Status(d.ID); return s.LastError != "" })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.m.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline's error", err)
	}
	select {
	case <-e.done:
	default:
		t.Fatal("Shutdown returned before Run")
	}
	e.cancel = nil

	r.setRespond(nil)
	e.start()
	waitFor(t, "10 messages", func() bool { return len(r.stream().msgs) >= 10 })
	wantSeq(t, r.stream().msgs, 0, 10)
}

// TestShutdownBeforeRun: Shutdown of a manager that never ran returns at
// once, and so does a Run after it.
func TestShutdownBeforeRun(t *testing.T) {
	e := newEnv(t, testConfig())
	m := &Manager{Config: testConfig(), Store: e.store, Log: e.log, Logger: zerolog.New(io.Discard)}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Shutdown = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run after Shutdown did not return")
	}
}
