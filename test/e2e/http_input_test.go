package e2e

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
)

// TestHTTPInput checks POST /logs answers (Logplex's statuses and bodies),
// that an error answer stores nothing (all or nothing), gzip bodies, and
// the frame size limit.
func TestHTTPInput(t *testing.T) {
	s := start(t)
	ch := s.createChannel(t, "http", "app")
	tok := ch.Tokens["app"]
	logsURL := "http://" + s.Addrs.Logs + "/logs"
	msg := func(ts, text string) string {
		return "<134>1 2024-02-03T04:05:06." + ts + "Z host " + tok + " web.1 - - " + text
	}
	post := func(auth, ctype, count, body string, extra ...string) Response {
		h := append([]string{"Content-Type", ctype}, extra...)
		if count != "" {
			h = append(h, "Logplex-Msg-Count", count)
		}
		return do(t, "POST", logsURL, auth, body, h...)
	}
	good := frame(msg("000001", "good"))

	cases := []struct {
		name       string
		resp       Response
		status     int
		body       string
		authHeader bool
	}{
		{"count mismatch", post(tokenAuth(tok), "application/logplex-1", "2", good), 400, "Message count mismatch", false},
		{"count not a number", post(tokenAuth(tok), "application/logplex-1", "one", good), 400, "Message count mismatch", false},
		{"newline framing", post(tokenAuth(tok), "application/logplex-1", "1", msg("000002", "unframed")+"\n"), 400, "Malformed log messages", false},
		{"good then malformed", post(tokenAuth(tok), "application/logplex-1", "", good+"garbage line\n"), 400, "Malformed log messages", false},
		{"oversized frame", post(tokenAuth(tok), "application/logplex-1", "1", frame(pad(msg("000003", ""), 10241))), 400, "Malformed log messages", false},
		{"text/plain", post(tokenAuth(tok), "text/plain", "1", good), 415, "", false},
		{"no auth", post("", "application/logplex-1", "1", good), 401, "", true},
		{"unknown token", post(tokenAuth(unknownToken), "application/logplex-1", "1", good), 401, "", true},
		{"admin key is not accepted", post(adminAuth(s), "application/logplex-1", "1", good), 401, "", true},
		{"GET", do(t, "GET", logsURL, tokenAuth(tok), nil), 405, "", false},
	}
	for _, c := range cases {
		if c.resp.Status != c.status {
			t.Errorf("%s: %s, want status %d", c.name, c.resp, c.status)
			continue
		}
		if c.body != "" && string(c.resp.Body) != c.body {
			t.Errorf("%s: body %q, want %q", c.name, c.resp.Body, c.body)
		}
		if c.authHeader && c.resp.Header.Get("WWW-Authenticate") != "Basic realm=Logplex" {
			t.Errorf("%s: WWW-Authenticate %q, want Basic realm=Logplex", c.name, c.resp.Header.Get("WWW-Authenticate"))
		}
	}
	if lines := s.historyLines(t, ch.ID, 100); len(lines) != 0 {
		t.Fatalf("rejected requests stored messages: %q", lines)
	}

	// gzip body, x-logplex-1 content type, several frames.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(frame(msg("000004", "gzip one")) + frame(msg("000005", "gzip two"))))
	zw.Close()
	r := post(tokenAuth(tok), "application/x-logplex-1", "2", gz.String(), "Content-Encoding", "gzip")
	mustStatus(t, "gzip POST /logs", r, http.StatusNoContent)

	// A frame of exactly the maximum size is accepted.
	big := pad(msg("000006", ""), 10240)
	r = post(tokenAuth(tok), "application/logplex-1", "1", frame(big))
	mustStatus(t, "POST /logs with a 10240-byte frame", r, http.StatusNoContent)

	want := []string{
		"2024-02-03T04:05:06.000004Z app[web.1]: gzip one",
		"2024-02-03T04:05:06.000005Z app[web.1]: gzip two",
		"2024-02-03T04:05:06.000006Z app[web.1]: " + big[len(msg("000006", "")):],
	}
	got := s.historyLines(t, ch.ID, 100)
	if len(got) != len(want) {
		t.Fatalf("history has %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %.120q\nwant %.120q", i, got[i], want[i])
		}
	}
}

// pad extends s with 'x' to n bytes.
func pad(s string, n int) string { return s + strings.Repeat("x", n-len(s)) }
