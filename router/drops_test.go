package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/syslog"
)

// lockedBuffer is a log destination written by many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const tokUnknown = "t.00000000-0000-4000-8000-00000000dead"

func TestRedactLine(t *testing.T) {
	long := "<134>1 - h " + tokApp + " web.1 - - " + strings.Repeat("é", 400)
	cases := []struct {
		name, msg, want string
		max             int
	}{
		{"app-name token", "<134>1 - h " + tokUnknown + " web.1 - - hello", "<134>1 - h t.… web.1 - - hello", 512},
		{"token in the text too", "<134>1 - h " + tokUnknown + " web.1 - - my token is " + tokApp + "!", "<134>1 - h t.… web.1 - - my token is t.…!", 512},
		{"token cut short", "<134>1 - h t.feff49f1-4d55 web.1 - - hello", "<134>1 - h t.… web.1 - - hello", 512},
		{"not a token", "<134>1 - h t.secret web.1 - - at.feff49f1-4d55 t.1", "<134>1 - h t.secret web.1 - - at.feff49f1-4d55 t.1", 512},
		{"no token position", "garbage " + tokApp, "garbage t.…", 512},
		{"empty", "", "", 512},
		{"cut at a character boundary", long, "<134>1 - h t.… web.1 - - éé", 32},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RedactLine([]byte(c.msg), c.max); got != c.want {
				t.Errorf("RedactLine(%q, %d) = %q, want %q", c.msg, c.max, got, c.want)
			}
		})
	}
}

// startSyslog serves r over TCP on a loopback port.
func startSyslog(t *testing.T, r *Router) net.Addr {
	t.Helper()
	srv := &syslog.Server{TCPAddr: "127.0.0.1:0", Handler: r, Logger: zerolog.Nop()}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return srv.Addrs().TCP
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An unknown token over TCP is logged once per sampling period, with its
// reason, listener and peer, never with the token or the message; taps get
// the line redacted.
func TestDroppedUnknownTokenOverTCP(t *testing.T) {
	r, _ := newTestRouter(t)
	var logs lockedBuffer
	r.SetLogger(zerolog.New(&logs))
	tap := r.Tap()
	defer tap.Close()
	addr := startSyslog(t, r)

	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 20
	var sent bytes.Buffer
	for i := range n {
		fmt.Fprintf(&sent, "<134>1 2024-05-01T10:00:00Z host %s web.1 - - secret line %d\n", tokUnknown, i)
	}
	if _, err := c.Write(sent.Bytes()); err != nil {
		t.Fatal(err)
	}

	var got []Dropped
	for len(got) < n {
		select {
		case d := <-tap.C():
			got = append(got, d)
		case <-time.After(10 * time.Second):
			t.Fatalf("tap: %d of %d dropped lines", len(got), n)
		}
	}
	local := c.LocalAddr().String()
	for i, d := range got {
		want := fmt.Sprintf("<134>1 2024-05-01T10:00:00Z host t.… web.1 - - secret line %d", i)
		if d.Reason != "unknown_token" || d.Listener != "tcp" || d.RemoteAddr != local || d.Line != want || d.Time.IsZero() {
			t.Errorf("tap line %d = %+v, want reason unknown_token, listener tcp, remote_addr %s, line %q", i, d, local, want)
		}
	}

	waitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), "unknown_token") })
	lines := logs.lines()
	if len(lines) != 1 {
		t.Fatalf("%d log lines for %d drops within %v, want 1:\n%s", len(lines), n, DropLogEvery, logs.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["level"] != "warn" || line["reason"] != "unknown_token" || line["listener"] != "tcp" || line["remote_addr"] != local {
		t.Errorf("log line %s: want level warn, reason unknown_token, listener tcp, remote_addr %s", lines[0], local)
	}
	if s := logs.String(); strings.Contains(s, tokUnknown) || strings.Contains(s, "secret") || strings.Contains(s, "t.00000000") {
		t.Errorf("the log shows the message or its token: %s", s)
	}
}

// A tap that is not read skips lines (and counts them) instead of
// blocking the input; closing it stops the publishing.
func TestTapIsBounded(t *testing.T) {
	r, _ := newTestRouter(t)
	tap := r.Tap()
	msg := []byte("<134>1 - h " + tokUnknown + " web.1 - - x")
	for range tapBuffer + 10 {
		r.Drop(DropUnknownToken, "udp", "", msg, 1)
	}
	if len(tap.C()) != tapBuffer {
		t.Errorf("tap holds %d lines, want %d", len(tap.C()), tapBuffer)
	}
	if n := tap.Skipped(); n != 10 {
		t.Errorf("Skipped = %d, want 10", n)
	}
	tap.Close()
	tap.Close()
	if r.drops.tapping.Load() != 0 {
		t.Errorf("tapping = %d after Close, want 0", r.drops.tapping.Load())
	}
}

// Dropping allocates nothing when the log line was just written and
// nobody taps.
func TestDropNoAllocations(t *testing.T) {
	r, _ := newTestRouter(t)
	r.SetLogger(zerolog.New(&lockedBuffer{}))
	s := r.NewSink("tcp")
	defer s.Close()
	s.(syslog.PeerSink).SetRemote(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234})
	ctx := context.Background()
	unknown := []byte("<134>1 - h " + tokUnknown + " web.1 - - x")
	malformed := []byte("<134>1 - h app web.1 - - no token")
	run := func() {
		for range 32 {
			s.Frame(unknown)
			s.Frame(malformed)
		}
		s.Flush(ctx)
	}
	run() // the one log line of each reason
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Errorf("dropped input: %v allocations per 64 messages, want 0", a)
	}
}
