package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/plexustest"
)

// drainRequest is one POST an HTTP drain receiver got.
type drainRequest struct {
	URI    string
	Header http.Header
	Frames []string
}

// drainReceiver is an HTTP endpoint that records logplex-1 POSTs. Its
// frame decoder follows the format spec ("LEN SP MSG", no separator).
type drainReceiver struct {
	ln  net.Listener
	srv *http.Server
	mu  sync.Mutex
	got []drainRequest
	bad []string
}

// startDrainReceiver listens on addr ("127.0.0.1:0" for any port).
func startDrainReceiver(t testing.TB, addr string) *drainReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &drainReceiver{ln: ln}
	d.srv = &http.Server{Handler: http.HandlerFunc(d.serve)}
	go d.srv.Serve(ln)
	t.Cleanup(d.Close)
	return d
}

func (d *drainReceiver) Close() { d.srv.Close() }

func (d *drainReceiver) Addr() string { return d.ln.Addr().String() }

func (d *drainReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	frames, err := plexustest.SplitFrames(body)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.bad = append(d.bad, fmt.Sprintf("%v in %q", err, body))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.got = append(d.got, drainRequest{URI: r.RequestURI, Header: r.Header.Clone(), Frames: frames})
	w.WriteHeader(http.StatusOK)
}

// requests returns what was received so far.
func (d *drainReceiver) requests() ([]drainRequest, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]drainRequest(nil), d.got...), append([]string(nil), d.bad...)
}

// frames returns all frames received, in order.
func (d *drainReceiver) frames() []string {
	reqs, _ := d.requests()
	var out []string
	for _, r := range reqs {
		out = append(out, r.Frames...)
	}
	return out
}

func (d *drainReceiver) waitFrames(t testing.TB, n int, timeout time.Duration) []string {
	t.Helper()
	var got []string
	waitFor(t, timeout, fmt.Sprintf("%d drained frames", n), func() (bool, string) {
		got = d.frames()
		_, bad := d.requests()
		return len(got) >= n, fmt.Sprintf("%d frames, last %q, bad %q", len(got), tailLines(got, 2), bad)
	})
	return got
}

func (s *Server) addDrain(t testing.TB, channelID, url string) (id, token string) {
	t.Helper()
	r := s.API(t, "POST", "/v2/channels/"+channelID+"/drains", map[string]any{"url": url})
	mustStatus(t, "POST /v2/channels/{id}/drains "+url, r, http.StatusCreated)
	var d struct {
		ID    any
		Token string
	}
	r.JSON(t, &d)
	if !strings.HasPrefix(d.Token, "d.") {
		t.Fatalf("drain answer %s", r)
	}
	return fmt.Sprint(d.ID), d.Token
}

// TestHTTPDrain checks an HTTP drain's requests end to end: path and query
// kept, fragment dropped, credentials from the URL, Logplex headers, and the
// body format (no structured data, host "host", token name as APP-NAME).
func TestHTTPDrain(t *testing.T) {
	recv := startDrainReceiver(t, "127.0.0.1:0")
	s := start(t)
	ch := s.createChannel(t, "httpdrain", "app")
	_, drainToken := s.addDrain(t, ch.ID, "http://user:secret@"+recv.Addr()+"/in/logs?x=1#frag")

	var msgs, want []string
	for i := 1; i <= 5; i++ {
		msgs = append(msgs, fmt.Sprintf(`<134>1 2012-12-10T03:00:48.%06dZ erlang %s console.%d - [meta a="b"] Logsplat test message %d`, i, ch.Tokens["app"], i, i))
		want = append(want, fmt.Sprintf("<134>1 2012-12-10T03:00:48.%06dZ host app console.%d - Logsplat test message %d", i, i, i))
	}
	s.mustPostLogs(t, ch.Tokens["app"], msgs...)
	got := recv.waitFrames(t, len(want), 15*time.Second)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("drained frames:\n got %q\nwant %q", got, want)
	}
	reqs, _ := recv.requests()
	frameID := regexp.MustCompile(`^[0-9A-F]{32}$`)
	for i, r := range reqs {
		h := r.Header
		checks := []struct{ name, got, want string }{
			{"request URI", r.URI, "/in/logs?x=1"},
			{"Content-Type", h.Get("Content-Type"), "application/logplex-1"},
			{"Logplex-Msg-Count", h.Get("Logplex-Msg-Count"), strconv.Itoa(len(r.Frames))},
			{"Logplex-Drain-Token", h.Get("Logplex-Drain-Token"), drainToken},
			{"Authorization", h.Get("Authorization"), "Basic " + base64.StdEncoding.EncodeToString([]byte("user:secret"))},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("request %d: %s %q, want %q", i, c.name, c.got, c.want)
			}
		}
		if !frameID.MatchString(h.Get("Logplex-Frame-Id")) {
			t.Errorf("request %d: Logplex-Frame-Id %q, want 32 uppercase hex characters", i, h.Get("Logplex-Frame-Id"))
		}
		if h.Get("User-Agent") == "" {
			t.Errorf("request %d: no User-Agent", i)
		}
	}
}

// TestDrainOutage starts with the receiver down: messages ingested during
// the outage and across a graceful restart of plexus are delivered in
// order once the receiver is up, then live messages follow.
func TestDrainOutage(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	s := start(t, "-shutdown-grace", "1s")
	ch := s.createChannel(t, "outage", "app")
	s.addDrain(t, ch.ID, "http://"+addr+"/")

	var want []string
	post := func(from, to int) {
		var msgs []string
		for i := from; i <= to; i++ {
			msgs = append(msgs, fmt.Sprintf("<134>1 2024-01-01T00:00:00.000000Z host %s web.1 - - n %d", ch.Tokens["app"], i))
			want = append(want, fmt.Sprintf("<134>1 2024-01-01T00:00:00.000000Z host app web.1 - n %d", i))
		}
		s.mustPostLogs(t, ch.Tokens["app"], msgs...)
	}
	post(1, 300)
	s.Restart()
	post(301, 600)
	recv := startDrainReceiver(t, addr)
	recv.waitFrames(t, 600, 30*time.Second)
	post(601, 700)
	got := recv.waitFrames(t, 700, 15*time.Second)
	if len(got) != len(want) {
		t.Fatalf("receiver got %d frames, want %d (duplicates?)", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("frame %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestSyslogDrain checks the syslog drain wire format with a raw TCP
// listener: "LEN <PRI>1 TS d.<token> APP PROCID - - MSG\n".
func TestSyslogDrain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := start(t)
	ch := s.createChannel(t, "syslogdrain", "app")
	_, drainToken := s.addDrain(t, ch.ID, "syslog://"+ln.Addr().String())
	s.mustPostLogs(t, ch.Tokens["app"], "<134>1 2012-12-10T03:00:48.123456Z erlang "+ch.Tokens["app"]+" console.1 - - Logsplat test message 1")

	ln.(*net.TCPListener).SetDeadline(time.Now().Add(15 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("no drain connection: %v", err)
	}
	defer c.Close()
	msg := "<134>1 2012-12-10T03:00:48.123456Z " + drainToken + " app console.1 - - Logsplat test message 1\n"
	want := strconv.Itoa(len(msg)) + " " + msg
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read drain stream: %v (got %q)", err, buf)
	}
	if string(buf) != want {
		t.Errorf("syslog drain wrote\n %q\nwant %q", buf, want)
	}
}
