package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
	"github.com/plexus-router/plexus/test/plexustest"
)

const testKey = "node-test-key-0123456789"

// testNodeConfig is the default configuration on loopback with
// kernel-chosen ports and a temporary data dir.
func testNodeConfig(t *testing.T, extra ...string) *Config {
	t.Helper()
	args := append([]string{
		"-api-addr", "127.0.0.1:0", "-logs-addr", "127.0.0.1:0",
		"-syslog-addr", "127.0.0.1:0", "-syslog-udp-addr", "127.0.0.1:0",
		"-data-dir", t.TempDir(), "-auth-key", testKey,
	}, extra...)
	cfg, err := parseConfig(args, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// logBuffer collects a node's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// messages returns the "message" field of every line so far.
func (l *logBuffer) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		var v struct{ Message string }
		if json.Unmarshal([]byte(line), &v) == nil {
			out = append(out, v.Message)
		}
	}
	return out
}

// startNode opens a node and runs it until the test ends or stop is
// called; stop returns Run's error.
func startNode(t *testing.T, cfg *Config) (n *Node, logs *logBuffer, stop func() error) {
	t.Helper()
	logs = &logBuffer{}
	n = &Node{Config: cfg, Logger: zerolog.New(logs)}
	if err := n.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		if stop() == nil && !n.closing {
			n.Close(context.Background())
		}
	})
	waitFor(t, 10*time.Second, "healthcheck 200", func() bool {
		r, err := http.Get("http://" + n.addrs["api"] + "/v3/healthcheck")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
	return n, logs, stop
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// call makes an admin API request and decodes a JSON answer into out.
func call(t *testing.T, n *Node, method, path, body string, wantCode int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.addrs["api"]+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Basic "+testKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != wantCode {
		t.Fatalf("%s %s = %d %s, want %d", method, path, res.StatusCode, b, wantCode)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// metric returns the value of a counter of the node's registry.
func metric(t *testing.T, n *Node, name, label, value string) int {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}

var seqRE = regexp.MustCompile(`seq (\d+)$`)

// seqOf returns the sequence number at the end of a test message.
func seqOf(t *testing.T, msg string) int {
	t.Helper()
	m := seqRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("message without a sequence number: %q", msg)
	}
	i, _ := strconv.Atoi(m[1])
	return i
}

// receiver is an HTTP drain endpoint that records the sequence numbers it
// got.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu   sync.Mutex
	seqs map[int]bool
	errs []string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, seqs: map[int]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		frames, ferr := plexustest.SplitFrames(body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil || ferr != nil {
			r.errs = append(r.errs, fmt.Sprintf("body: %v %v", err, ferr))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, f := range frames {
			if m := seqRE.FindStringSubmatch(f); m != nil {
				i, _ := strconv.Atoi(m[1])
				r.seqs[i] = true
			} else {
				r.errs = append(r.errs, fmt.Sprintf("frame without a sequence number: %q", f))
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// got returns how many distinct messages arrived and whether they are
// exactly 1..n.
func (r *receiver) got() (n int, dense bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 1; i <= len(r.seqs); i++ {
		if !r.seqs[i] {
			return len(r.seqs), false
		}
	}
	return len(r.seqs), true
}

// TestNodeShutdownOrder: messages stream over TCP into a node with an HTTP
// drain while it is closed. Every frame the node read is in the log when
// drains are stopped (input was stopped and flushed first), the receiver
// has every one of them when the backend is closed (drains delivered what
// the log held), and the log written at Close holds them all.
func TestNodeShutdownOrder(t *testing.T) {
	recv := newReceiver(t)
	cfg := testNodeConfig(t, "-history", "1000000", "-shutdown-grace", "30s")
	n, logs, stop := startNode(t, cfg)

	var ch struct{ Tokens map[string]string }
	call(t, n, "PUT", "/v3/channels/shutdown", `{"tokens":["app"]}`, 201, &ch)
	call(t, n, "POST", "/v3/channels/shutdown/drains", `{"url":"`+recv.srv.URL+`/"}`, 201, nil)

	conn, err := net.Dial("tcp", n.addrs["syslog_tcp"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	const maxMsgs = 500000
	writer := make(chan int, 1)
	go func() {
		// Write until the node closes the connection.
		var buf []byte
		i := 0
		for i < maxMsgs {
			buf = buf[:0]
			for range 50 {
				i++
				buf = fmt.Appendf(buf, "<134>1 2024-01-01T00:00:00Z host %s web.1 - - seq %d\n", ch.Tokens["app"], i)
			}
			if _, err := conn.Write(buf); err != nil {
				break
			}
		}
		writer <- i
	}()
	waitFor(t, 10*time.Second, "2000 frames read", func() bool { return metric(t, n, "plexus_syslog_frames_total", "listener", "tcp") >= 2000 })

	type seen struct{ read, appended, delivered int }
	var atDrains, atBackend seen
	var steps []string
	appended := func() int {
		info, err := n.be.log.Info(context.Background(), "shutdown")
		if err != nil {
			t.Errorf("Info: %v", err)
		}
		return int(info.Next) - 1
	}
	n.onStep = func(step string) {
		steps = append(steps, step)
		delivered, dense := recv.got()
		if !dense {
			t.Errorf("at step %s the receiver has %d messages, not 1..%[2]d", step, delivered)
		}
		s := seen{metric(t, n, "plexus_syslog_frames_total", "listener", "tcp"), appended(), delivered}
		switch step {
		case "drains":
			atDrains = s
		case "backend":
			atBackend = s
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	sent := <-writer
	t.Logf("sent up to %d; at drains %+v; at backend %+v", sent, atDrains, atBackend)

	if want := []string{"input", "drains", "backend"}; strings.Join(steps, ",") != strings.Join(want, ",") {
		t.Fatalf("shutdown steps %q, want %q", steps, want)
	}
	if atDrains.read < 2000 || atDrains.appended != atDrains.read {
		t.Errorf("when drains were stopped %d frames were read and %d appended: want every frame read appended", atDrains.read, atDrains.appended)
	}
	if atBackend.appended != atDrains.appended || atBackend.delivered != atBackend.appended {
		t.Errorf("when the backend was closed the log held %d messages and the receiver had %d: want all delivered", atBackend.appended, atBackend.delivered)
	}
	recv.mu.Lock()
	if len(recv.errs) > 0 {
		t.Errorf("receiver: %q", recv.errs[:min(3, len(recv.errs))])
	}
	recv.mu.Unlock()

	// The log written at Close holds every message, in order.
	l, err := embedded.OpenLog(embedded.LogConfig{Dir: filepath.Join(cfg.DataDir, "logs"), Default: channels.Retention{Count: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var recs channels.Records
	next, from := 1, channels.Cursor{}
	for {
		res, err := l.Read(context.Background(), "shutdown", from, 10000, 0, &recs)
		if err != nil {
			t.Fatal(err)
		}
		if recs.Len() == 0 {
			break
		}
		for i := range recs.Len() {
			if got := seqOf(t, string(recs.At(i).Data)); got != next {
				t.Fatalf("reopened log: message %d is seq %d", next, got)
			}
			next++
		}
		from = res.Next
	}
	if next-1 != atDrains.appended {
		t.Errorf("reopened log holds %d messages, want %d", next-1, atDrains.appended)
	}

	// The node said it was ready once the config was loaded, and stopped.
	msgs := strings.Join(logs.messages(), "|")
	if !regexp.MustCompile(`config loaded\|.*plexus ready\|.*shutting down\|.*stopped`).MatchString(msgs) {
		t.Errorf("log messages %q, want config loaded, plexus ready, shutting down, stopped in that order", msgs)
	}
}

// TestNodeSingleNode: GET /v3/nodes on a node alone lists it by its id,
// with its bound API address (not the configured 127.0.0.1:0).
func TestNodeSingleNode(t *testing.T) {
	cfg := testNodeConfig(t, "-node-id", "solo")
	n, _, _ := startNode(t, cfg)
	var nodes []channels.Node
	call(t, n, "GET", "/v3/nodes", "", 200, &nodes)
	want := "http://" + n.addrs["api"]
	if len(nodes) != 1 || nodes[0].ID != "solo" || nodes[0].Addr != want || nodes[0].StartedAt.IsZero() || nodes[0].SeenAt.IsZero() {
		t.Errorf("GET /v3/nodes = %+v, want solo at %s", nodes, want)
	}
}

// TestNodeCloseWithoutRun: a node opened and closed without running
// releases its listeners and data dir: a second node opens on both.
func TestNodeCloseWithoutRun(t *testing.T) {
	cfg := testNodeConfig(t)
	n := &Node{Config: cfg, Logger: zerolog.New(io.Discard)}
	if err := n.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	api := n.addrs["api"]
	if err := n.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	cfg2 := *cfg
	cfg2.APIAddr, cfg2.APIURL = api, ""
	n2 := &Node{Config: &cfg2, Logger: zerolog.New(io.Discard)}
	if err := n2.Open(context.Background()); err != nil {
		t.Fatalf("Open after Close on the same data dir and API address: %v", err)
	}
	if err := n2.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
}
