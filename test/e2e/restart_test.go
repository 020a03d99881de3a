package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// sinkListener accepts TCP connections on 127.0.0.1 and discards what they
// send, until the test ends.
func sinkListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// decodeJSON decodes a body into a generic value for comparisons.
func decodeJSON(t testing.TB, r Response) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON (%v): %s", err, r)
	}
	return v
}

// TestRestartKeepsState creates channels, tokens, a drain, a credential, a
// session and history, restarts the process gracefully on the same data
// directory, and checks that all of it is still there and working.
func TestRestartKeepsState(t *testing.T) {
	s := start(t)
	ch := s.createChannel(t, "restart", "app", "heroku")

	r := s.API(t, "POST", "/v2/channels/"+ch.ID+"/tokens", map[string]any{"name": "worker"})
	mustStatus(t, "POST /v2/channels/{id}/tokens", r, http.StatusCreated)
	var tk struct{ Name, Token string }
	r.JSON(t, &tk)
	if tk.Name != "worker" || !isToken(tk.Token) {
		t.Fatalf("POST tokens answered %s", r)
	}
	ch.Tokens["worker"] = tk.Token

	r = s.API(t, "PUT", "/v3/channels/app-restart", map[string]any{"tokens": []string{"web"}})
	mustStatus(t, "PUT /v3/channels/app-restart", r, http.StatusCreated)

	drainURL := "syslog://" + sinkListener(t)
	r = s.API(t, "POST", "/v2/channels/"+ch.ID+"/drains", map[string]any{"url": drainURL})
	mustStatus(t, "POST /v2/channels/{id}/drains", r, http.StatusCreated)

	c := s.createCred(t, "restart", true, false)

	var msgs, want []string
	for i := 1; i <= 20; i++ {
		msgs = append(msgs, fmt.Sprintf("<134>1 2024-03-04T05:06:07.%06dZ host %s web.%d - - before restart %d", i, ch.Tokens["app"], i, i))
		want = append(want, fmt.Sprintf("2024-03-04T05:06:07.%06dZ app[web.%d]: before restart %d", i, i, i))
	}
	s.mustPostLogs(t, ch.Tokens["app"], msgs...)
	sessURL := s.newSession(t, map[string]any{"channel_id": ch.ID, "num": "100"})
	sessPath := sessURL[len("http://"+s.Addrs.API):]

	before := map[string]any{}
	for _, p := range []string{"/v2/channels/" + ch.ID, "/channels/" + ch.ID + "/info", "/v3/channels/app-restart"} {
		r := s.API(t, "GET", p, nil)
		mustStatus(t, "GET "+p, r, http.StatusOK)
		before[p] = decodeJSON(t, r)
	}
	if b, _ := json.Marshal(before["/v2/channels/"+ch.ID]); !bytes.Contains(b, []byte(drainURL)) {
		t.Errorf("GET /v2/channels/%s does not list the drain %s: %s", ch.ID, drainURL, b)
	}

	s.Restart()

	for p, v := range before {
		r := s.API(t, "GET", p, nil)
		mustStatus(t, "after restart: GET "+p, r, http.StatusOK)
		if got := decodeJSON(t, r); !reflect.DeepEqual(got, v) {
			t.Errorf("after restart GET %s:\n got %v\nwant %v", p, got, v)
		}
	}

	// History survived the clean restart.
	if got := s.historyLines(t, ch.ID, 100); !reflect.DeepEqual(got, want) {
		t.Errorf("history after restart:\n got %q\nwant %q", got, want)
	}
	// So did the session created before it.
	r = do(t, "GET", "http://"+s.Addrs.API+sessPath, "", nil)
	if r.Status != http.StatusOK || !reflect.DeepEqual(splitLines(string(r.Body)), want) {
		t.Errorf("session created before the restart: %d %q", r.Status, tailLines(splitLines(string(r.Body)), 3))
	}

	// The credential still authenticates.
	r = do(t, "GET", "http://"+s.Addrs.API+"/healthcheck", credAuth(c.ID, c.Pass), nil)
	mustStatus(t, "after restart: healthcheck with the credential", r, http.StatusOK)

	// Every token still routes, over HTTP and TCP, and offsets go on.
	for i, name := range []string{"app", "heroku", "worker"} {
		s.mustPostLogs(t, ch.Tokens[name], fmt.Sprintf("<134>1 2024-03-04T06:00:00.%06dZ host %s web.1 - - after %s", i, ch.Tokens[name], name))
		want = append(want, fmt.Sprintf("2024-03-04T06:00:00.%06dZ %s[web.1]: after %s", i, name, name))
	}
	conn := dialTCP(t, s.Addrs.SyslogTCP)
	write(t, conn, frame("<134>1 2024-03-04T07:00:00.000000Z host "+ch.Tokens["app"]+" web.2 - - after restart over tcp"))
	want = append(want, "2024-03-04T07:00:00.000000Z app[web.2]: after restart over tcp")
	got := s.waitHistory(t, ch.ID, len(want), 10*time.Second)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("history after new messages:\n got %q\nwant %q", tailLines(got, 6), tailLines(want, 6))
	}

	// v3 channel tokens still route.
	var v3 struct{ Tokens map[string]string }
	s.API(t, "GET", "/v3/channels/app-restart", nil).JSON(t, &v3)
	s.mustPostLogs(t, v3.Tokens["web"], "<134>1 2024-03-04T08:00:00.000000Z host "+v3.Tokens["web"]+" web.1 - - v3 after restart")
	if got, want := s.history(t, "app-restart", 10), "2024-03-04T08:00:00.000000Z web[web.1]: v3 after restart\n"; got != want {
		t.Errorf("v3 channel history %q, want %q", got, want)
	}

	// Channel ids are not reused.
	ch2 := s.createChannel(t, "after-restart")
	old, _ := strconv.ParseUint(ch.ID, 10, 64)
	if id, _ := strconv.ParseUint(ch2.ID, 10, 64); id <= old {
		t.Errorf("channel created after the restart got id %d, not after %d", id, old)
	}

	// A second restart right away (nothing new) keeps it all too.
	s.Restart()
	if got := s.historyLines(t, ch.ID, 100); len(got) != len(want) {
		t.Errorf("after a second restart: %d history lines, want %d", len(got), len(want))
	}
}
