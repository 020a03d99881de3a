package drains

import (
	"context"
	"encoding/base64"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

var frameIDRe = regexp.MustCompile(`^[0-9A-F]{32}$`)

func TestHTTPDelivery(t *testing.T) { forEachBackend(t, testHTTPDelivery) }

func testHTTPDelivery(t *testing.T, open logOpener) {
	e := newEnvOn(t, testConfig(), open)
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	u := strings.Replace(r.url("/logs?app=x#frag"), "http://", "http://user:p%40ss@", 1)
	d := e.addDrain(u)
	e.waitStarted(d)
	for range 4 {
		e.appendN(25)
	}
	waitFor(t, "100 messages", func() bool { return len(r.stream().msgs) >= 100 })
	r.check()
	wantSeq(t, r.stream().msgs, 0, 100)

	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:p@ss"))
	for i, req := range r.requests() {
		h := req.Header
		for k, want := range map[string]string{
			"Content-Type":        "application/logplex-1",
			"Logplex-Drain-Token": d.Token,
			"User-Agent":          "Plexus/test",
			"Authorization":       wantAuth,
			"Logplex-Msg-Count":   strconv.Itoa(len(req.Lines)),
		} {
			if got := h.Get(k); got != want {
				t.Errorf("request %d: %s = %q, want %q", i, k, got, want)
			}
		}
		if id := h.Get("Logplex-Frame-Id"); !frameIDRe.MatchString(id) {
			t.Errorf("request %d: Logplex-Frame-Id = %q", i, id)
		}
		if req.URI != "/logs?app=x" {
			t.Errorf("request %d: URI = %q, want /logs?app=x", i, req.URI)
		}
		for _, l := range req.Lines {
			if l.Pri != "134" || l.TS != "2024-01-02T03:04:05.000006Z" || l.Host != "host" || l.App != "app" || l.ProcID != "web.1" {
				t.Errorf("request %d: line %+v", i, l)
			}
		}
	}
	waitFor(t, "status", func() bool {
		s, ok := e.m.Status(d.ID)
		return ok && s.Delivered == 100 && s.LagMessages == 0
	})
	s, _ := e.m.Status(d.ID)
	if s.Dropped != 0 || s.LastError != "" || s.LastSuccess.IsZero() || s.Node != "node-1" || s.LagSeconds != 0 {
		t.Errorf("Status = %+v", s)
	}
	id := strconv.FormatInt(d.ID, 10)
	if v, _ := e.metric("plexus_drain_delivered_total", map[string]string{"drain_id": id}); v != 100 {
		t.Errorf("plexus_drain_delivered_total = %v, want 100", v)
	}
	if v, _ := e.metric("plexus_drain_requests_total", map[string]string{"drain_id": id, "result": "ok"}); v != float64(len(r.requests())) {
		t.Errorf("plexus_drain_requests_total{ok} = %v, want %d", v, len(r.requests()))
	}
}

// TestHTTPBatching: what accumulates while a request is in flight goes out
// as one larger batch, bounded by BatchBytes.
func TestHTTPBatching(t *testing.T) {
	cfg := testConfig()
	cfg.BatchBytes = 4096
	e := newEnv(t, cfg)
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrain(r.url("/"))
	e.waitStarted(d)
	r.block()
	e.appendN(1)
	waitFor(t, "first request", func() bool { return r.arrivals() == 1 })
	for range 10 {
		e.appendN(50)
	}
	r.release()
	waitFor(t, "501 messages", func() bool { return len(r.stream().msgs) >= 501 })
	wantSeq(t, r.stream().msgs, 0, 501)
	reqs := r.requests()
	if len(reqs[0].Lines) != 1 {
		t.Errorf("first batch has %d messages, want 1 (no linger)", len(reqs[0].Lines))
	}
	for i, req := range reqs[1:] {
		if len(req.Body) >= 4096 {
			t.Errorf("request %d: body of %d bytes, want < 4096", i+1, len(req.Body))
		}
		if i+2 < len(reqs) && len(req.Body) < 4096-200 {
			t.Errorf("request %d: body of %d bytes, want about 4096 (a full batch)", i+1, len(req.Body))
		}
	}
	r.check()
}

func TestHTTPSDelivery(t *testing.T) {
	good, other := newTestPKI(t), newTestPKI(t)
	cfg := testConfig()
	cfg.RootCAs = good.pool
	e := newEnv(t, cfg)
	ok := newHTTPReceiver(t, &good.cert, nil)
	bad := newHTTPReceiver(t, &other.cert, nil)
	e.start()

	d := e.addDrain(ok.url("/"))
	e.waitStarted(d)
	e.appendN(10)
	waitFor(t, "10 messages", func() bool { return len(ok.stream().msgs) >= 10 })
	wantSeq(t, ok.stream().msgs, 0, 10)
	ok.check()

	// A certificate from an unknown CA: no delivery, an L14 line in the log.
	if err := e.store.DeleteDrain(context.Background(), e.ch.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	d2 := e.addDrain(bad.url("/"))
	e.waitStarted(d2)
	e.appendN(5)
	waitFor(t, "L14 in the channel log", func() bool {
		for _, m := range e.logMessages() {
			if strings.Contains(m, "Error L14 (certificate validation)") && strings.Contains(m, d2.Token) {
				return true
			}
		}
		return false
	})
	if bad.arrivals() != 0 {
		t.Errorf("receiver with a bad certificate got %d requests", bad.arrivals())
	}
	s, _ := e.m.Status(d2.ID)
	if !strings.Contains(s.LastError, "certificate") {
		t.Errorf("LastError = %q, want a certificate error", s.LastError)
	}
	// #insecure delivers what waited, then the L14 line.
	if _, err := e.store.SetDrainURL(context.Background(), e.ch.ID, d2.ID, bad.url("/#insecure"), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "insecure delivery", func() bool { st := bad.stream(); return len(st.msgs) >= 5 && st.l14 >= 1 })
	wantSeq(t, bad.stream().msgs, 10, 15)
	if n := bad.stream().l14; n != 1 {
		t.Errorf("%d L14 lines delivered, want 1 (once per failure streak)", n)
	}
	bad.check()
}

// listenAgain binds addr again for a receiver that comes back. The port
// was free a moment ago; another socket may hold it for a while, so this
// retries, and fails the test if the port stays taken.
func listenAgain(t testing.TB, addr string) net.Listener {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen on %s again for the receiver that comes back: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHTTPReceiverDownAtStart(t *testing.T) {
	e := newEnv(t, testConfig())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e.start()
	d := e.addDrain("http://" + addr + "/")
	e.waitStarted(d)
	e.appendN(30)
	waitFor(t, "a failed attempt", func() bool { s, _ := e.m.Status(d.ID); return s.LastError != "" })
	e.appendN(30)
	r := newHTTPReceiver(t, nil, listenAgain(t, addr))
	waitFor(t, "60 messages", func() bool { return len(r.stream().msgs) >= 60 })
	wantSeq(t, r.stream().msgs, 0, 60)
	if st := r.stream(); len(st.l10) != 0 {
		t.Errorf("L10 lines %v, want none", st.l10)
	}
	r.check()
	waitFor(t, "status", func() bool { s, _ := e.m.Status(d.ID); return s.Delivered == 60 && s.LastSuccess.After(s.LastErrorAt) })
}

func TestHTTPReceiverDownMidStream(t *testing.T) {
	e := newEnv(t, testConfig())
	r1 := newHTTPReceiver(t, nil, nil)
	addr := r1.srv.Listener.Addr().String()
	e.start()
	d := e.addDrain(r1.url("/"))
	e.waitStarted(d)
	e.appendN(20)
	waitFor(t, "20 messages", func() bool { return len(r1.stream().msgs) >= 20 })
	r1.close()
	for range 4 {
		e.appendN(5)
	}
	waitFor(t, "a failed attempt", func() bool { s, _ := e.m.Status(d.ID); return s.LastError != "" })
	r2 := newHTTPReceiver(t, nil, listenAgain(t, addr))
	waitFor(t, "20 more messages", func() bool { return len(r2.stream().msgs) >= 20 })
	wantSeq(t, append(r1.stream().msgs, r2.stream().msgs...), 0, 40)
	r1.check()
	r2.check()
}

// TestHTTPRetrySameFrame: 500 twice then 2xx: the same batch three times
// with the same Logplex-Frame-Id and body.
func TestHTTPRetrySameFrame(t *testing.T) {
	e := newEnv(t, testConfig())
	r := newHTTPReceiver(t, nil, nil)
	r.setRespond(func(n int, _ *httpRequest) int {
		if n < 2 {
			return 500
		}
		return 200
	})
	e.start()
	d := e.addDrain(r.url("/"))
	e.waitStarted(d)
	e.appendN(5)
	waitFor(t, "5 messages", func() bool { return len(r.stream().msgs) >= 5 })
	wantSeq(t, r.stream().msgs, 0, 5)
	reqs := r.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, req := range reqs {
		if want := []int{500, 500, 200}[i]; req.Status != want {
			t.Errorf("request %d answered %d, want %d", i, req.Status, want)
		}
		if req.Header.Get("Logplex-Frame-Id") != reqs[0].Header.Get("Logplex-Frame-Id") {
			t.Errorf("request %d: Frame-Id %s, want %s", i, req.Header.Get("Logplex-Frame-Id"), reqs[0].Header.Get("Logplex-Frame-Id"))
		}
		if string(req.Body) != string(reqs[0].Body) {
			t.Errorf("request %d: body differs", i)
		}
	}
	r.check()
	id := strconv.FormatInt(d.ID, 10)
	if v, _ := e.metric("plexus_drain_requests_total", map[string]string{"drain_id": id, "result": "retry"}); v != 2 {
		t.Errorf("requests_total{retry} = %v, want 2", v)
	}
	waitFor(t, "status", func() bool { s, _ := e.m.Status(d.ID); return s.Delivered == 5 })
	s, _ := e.m.Status(d.ID)
	if s.LastError != "deliver: HTTP 500" || s.Dropped != 0 {
		t.Errorf("Status = %+v", s)
	}
}

// TestHTTPRejected: a 404 is not retried; the batch is counted in the next
// L10 line.
func TestHTTPRejected(t *testing.T) { forEachBackend(t, testHTTPRejected) }

func testHTTPRejected(t *testing.T, open logOpener) {
	e := newEnvOn(t, testConfig(), open)
	r := newHTTPReceiver(t, nil, nil)
	r.setRespond(func(n int, _ *httpRequest) int {
		if n == 0 {
			return 404
		}
		return 204
	})
	e.start()
	d := e.addDrain(r.url("/"))
	e.waitStarted(d)
	e.appendN(5)
	waitFor(t, "first request", func() bool { return len(r.requests()) == 1 })
	e.appendN(3)
	waitFor(t, "3 messages", func() bool { return len(r.stream().msgs) >= 3 })
	reqs := r.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (no retry of the rejected batch)", len(reqs))
	}
	if n := len(reqs[0].Lines); n != 5 {
		t.Fatalf("rejected batch had %d messages, want 5", n)
	}
	st := r.stream()
	wantSeq(t, st.msgs, 5, 8)
	if len(st.l10) != 1 || st.l10[0] != 5 {
		t.Errorf("L10 counts %v, want [5]", st.l10)
	}
	if reqs[1].Header.Get("Logplex-Msg-Count") != "4" {
		t.Errorf("Logplex-Msg-Count = %s, want 4 (L10 + 3)", reqs[1].Header.Get("Logplex-Msg-Count"))
	}
	if l := reqs[1].Lines[0]; l.Pri != "172" || l.App != "heroku" || l.ProcID != "logplex" || l.Host != "host" {
		t.Errorf("L10 line %+v", l)
	}
	r.check()
	id := strconv.FormatInt(d.ID, 10)
	if v, _ := e.metric("plexus_drain_dropped_total", map[string]string{"drain_id": id, "reason": "rejected"}); v != 5 {
		t.Errorf("dropped_total{rejected} = %v, want 5", v)
	}
	waitFor(t, "status", func() bool { s, _ := e.m.Status(d.ID); return s.Delivered == 3 })
	if s, _ := e.m.Status(d.ID); s.Dropped != 5 {
		t.Errorf("Status.Dropped = %d, want 5", s.Dropped)
	}
}

// TestSlowReceiver: appends complete while the receiver holds a request.
func TestSlowReceiver(t *testing.T) {
	cfg := testConfig()
	cfg.Retention = channels.Retention{Count: 100000}
	e := newEnv(t, cfg)
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrain(r.url("/"))
	e.waitStarted(d)
	r.block()
	e.appendN(1)
	waitFor(t, "first request", func() bool { return r.arrivals() == 1 })
	for range 200 {
		e.appendN(100) // must not wait for the receiver
	}
	if n := len(r.requests()); n != 0 || r.arrivals() != 1 {
		t.Fatalf("receiver finished %d requests while held", n)
	}
	s, _ := e.m.Status(d.ID)
	if s.LagMessages != 20001 {
		t.Errorf("LagMessages = %d, want 20001", s.LagMessages)
	}
	r.release()
	waitFor(t, "20001 messages", func() bool { return len(r.stream().msgs) >= 20001 })
	wantSeq(t, r.stream().msgs, 0, 20001)
	r.check()
}

// TestRetentionExceeded: what left retention before delivery is reported
// by one L10 line with the exact count.
func TestRetentionExceeded(t *testing.T) { forEachBackend(t, testRetentionExceeded) }

func testRetentionExceeded(t *testing.T, open logOpener) {
	cfg := testConfig()
	cfg.Retention = channels.Retention{Count: 50}
	e := newEnvOn(t, cfg, open)
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrain(r.url("/"))
	e.waitStarted(d)
	r.block()
	e.appendN(1)
	waitFor(t, "first request", func() bool { return r.arrivals() == 1 })
	for range 5 {
		e.appendN(100)
	}
	r.release()
	waitFor(t, "everything accounted", func() bool { st := r.stream(); return uint64(len(st.msgs))+st.lost() >= 501 })
	st := r.stream()
	// Backends trim at their own grain (the embedded log by whole
	// appended batches, here 100 messages): at least 50 stay, and the L10
	// count must match the gap exactly.
	if len(st.l10) != 1 || st.l10[0] == 0 || st.l10[0] > 450 {
		t.Fatalf("L10 counts %v, want one count in 1..450", st.l10)
	}
	lost := int(st.l10[0])
	if open == nil && lost != 400 {
		t.Errorf("L10 count %d, want 400 (the 5 batches of 100 but the newest)", lost)
	}
	wantSeq(t, st.msgs[:1], 0, 1)
	wantSeq(t, st.msgs[1:], 1+lost, 501)
	r.check()
	waitFor(t, "status", func() bool { s, _ := e.m.Status(d.ID); return s.Delivered == uint64(501-lost) })
	if s, _ := e.m.Status(d.ID); s.Dropped != uint64(lost) {
		t.Errorf("Status.Dropped = %d, want %d", s.Dropped, lost)
	}
	id := strconv.FormatInt(d.ID, 10)
	if v, _ := e.metric("plexus_drain_dropped_total", map[string]string{"drain_id": id, "reason": "retention"}); v != float64(lost) {
		t.Errorf("dropped_total{retention} = %v, want %d", v, lost)
	}
}

// TestDrainChangedAndDeleted: a URL change continues from the position
// without loss; a delete stops the worker and removes its metrics.
func TestDrainChangedAndDeleted(t *testing.T) { forEachBackend(t, testDrainChangedAndDeleted) }

func testDrainChangedAndDeleted(t *testing.T, open logOpener) {
	e := newEnvOn(t, testConfig(), open)
	a := newHTTPReceiver(t, nil, nil)
	b := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrain(a.url("/a"))
	e.waitStarted(d)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			e.appendN(5)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	waitFor(t, "some messages at A", func() bool { return len(a.stream().msgs) >= 100 })
	if _, err := e.store.SetDrainURL(context.Background(), e.ch.ID, d.ID, b.url("/b"), 0); err != nil {
		t.Fatal(err)
	}
	<-done
	waitFor(t, "1000 messages", func() bool { return len(dedupeByFrame(append(a.requests(), b.requests()...))) >= 1000 })
	wantSeq(t, dedupeByFrame(append(a.requests(), b.requests()...)), 0, 1000)
	if len(b.stream().msgs) == 0 {
		t.Error("nothing delivered to the new URL")
	}
	a.check()
	b.check()

	if err := e.store.DeleteDrain(context.Background(), e.ch.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "worker stop", func() bool {
		_, ok := e.m.Status(d.ID)
		e.m.mu.Lock()
		defer e.m.mu.Unlock()
		return !ok && len(e.m.last) == 0
	})
	if n := e.series(d.ID); n != 0 {
		t.Errorf("%d metric series left for the deleted drain", n)
	}
	before := len(b.requests())
	e.appendN(5)
	time.Sleep(50 * time.Millisecond) // nothing may arrive
	if n := len(b.requests()); n != before {
		t.Errorf("deleted drain sent %d requests", n-before)
	}
}

// TestRestart: undelivered messages survive a restart (persisted log and
// store) and are delivered once, in order.
func TestRestart(t *testing.T) {
	e := newEnv(t, testConfig())
	e.persist = true
	e.close()
	e.open()
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrain(r.url("/"))
	e.waitStarted(d)
	e.appendN(50)
	waitFor(t, "50 messages", func() bool { return len(r.stream().msgs) >= 50 })
	r.setRespond(func(int, *httpRequest) int { return 503 })
	e.appendN(30)
	e.appendN(20)
	waitFor(t, "a failed attempt", func() bool { s, _ := e.m.Status(d.ID); return s.LastError != "" })
	e.close()
	r.setRespond(nil)
	e.open()
	e.start()
	waitFor(t, "100 messages", func() bool { return len(r.stream().msgs) >= 100 })
	wantSeq(t, r.stream().msgs, 0, 100)
	r.check() // also: no frame acknowledged twice
}

func TestOwnership(t *testing.T) {
	e := newEnv(t, testConfig())
	own := newOwnership()
	e.own = own
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrain(r.url("/"))
	waitFor(t, "reconcile", func() bool {
		ds, _ := e.store.Drains(context.Background())
		return len(ds) == 1
	})
	time.Sleep(20 * time.Millisecond)
	if _, ok := e.m.Status(d.ID); ok {
		t.Fatal("worker for a drain this node does not own")
	}
	own.set(d.ID, true)
	e.waitStarted(d)
	e.appendN(3)
	waitFor(t, "3 messages", func() bool { return len(r.stream().msgs) >= 3 })
	own.set(d.ID, false)
	waitFor(t, "worker stop", func() bool { _, ok := e.m.Status(d.ID); return !ok })
	e.appendN(3)
	own.set(d.ID, true)
	waitFor(t, "6 messages", func() bool { return len(r.stream().msgs) >= 6 })
	wantSeq(t, r.stream().msgs, 0, 6)
	r.check()
}

// TestRetentionForDrains: channels with drains get Config.Retention, and
// the default again when their last drain goes.
func TestRetentionForDrains(t *testing.T) {
	cfg := testConfig()
	cfg.Retention = channels.Retention{Count: 3000}
	e := newEnv(t, cfg)
	e.start()
	d := e.addDrain("syslog://127.0.0.1:1") // nothing listens: keeps everything
	e.waitStarted(d)
	e.appendN(2500)
	info, _ := e.log.Info(context.Background(), e.ch.ID)
	if n := info.Next - info.First; n != 2500 {
		t.Errorf("retained %d, want 2500", n)
	}
	if err := e.store.DeleteDrain(context.Background(), e.ch.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "default retention", func() bool {
		e.appendN(1)
		info, _ := e.log.Info(context.Background(), e.ch.ID)
		return info.Next-info.First == 1500
	})
}

func TestUnsupportedDrainIgnored(t *testing.T) {
	e := newEnv(t, testConfig())
	e.start()
	d := e.addDrain("ftp://example.invalid/")
	waitFor(t, "unsupported gauge", func() bool {
		v, _ := e.metric("plexus_drains_unsupported", nil)
		return v == 1
	})
	if _, ok := e.m.Status(d.ID); ok {
		t.Error("worker for an unsupported URL")
	}
}

// TestShutdownInFlight: Run returns when the request in flight reaches
// RequestTimeout; the next run sends the same batch (same Frame-Id).
func TestShutdownInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.RequestTimeout = 300 * time.Millisecond
	e := newEnv(t, cfg)
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrain(r.url("/"))
	e.waitStarted(d)
	r.block()
	e.appendN(5)
	waitFor(t, "request in flight", func() bool { return r.arrivals() == 1 })
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	r.release()
	waitFor(t, "held request answered", func() bool { return len(r.requests()) == 1 })
	first := r.requests()[0].Header.Get("Logplex-Frame-Id")
	r.mu.Lock()
	r.acked, r.seen = stream{}, map[string]bool{} // the held request timed out on our side
	r.mu.Unlock()
	// More messages arrive before the drain is taken up again: the batch
	// that was in flight must still be re-sent as it was (same messages,
	// same Frame-Id), not merged with them.
	e.appendN(5)
	e.start()
	waitFor(t, "10 messages", func() bool { return len(r.stream().msgs) >= 10 })
	wantSeq(t, r.stream().msgs, 0, 10)
	resent := r.requests()[1]
	if id := resent.Header.Get("Logplex-Frame-Id"); id != first {
		t.Errorf("Frame-Id after restart %s, want %s", id, first)
	}
	if n := resent.Header.Get("Logplex-Msg-Count"); n != "5" {
		t.Errorf("re-sent batch has %s messages, want the 5 that were in flight", n)
	}
}
