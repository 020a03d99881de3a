package api

import (
	"io"
	"strings"
	"testing"
)

// A logged <script> must never run when a session URL is opened in a
// browser: plain and SSE session streams forbid scripts and sniffing.
func TestSessionSafeHeaders(t *testing.T) {
	e := newEnv(t)
	ch, toks := e.channel("app")
	if r := e.post(toks["app"], msg(toks["app"], "web.1", "<script>alert(1)</script>")); r.code != 204 {
		t.Fatalf("POST /logs = %v", r)
	}
	for _, accept := range []string{"", "text/event-stream"} {
		url := e.session(`{"channel_id":"` + ch + `","num":"1"}`)
		res, br, cancel := e.open(url, map[string]string{"Accept": accept})
		if accept == "" {
			body, _ := io.ReadAll(br)
			if !strings.Contains(string(body), "<script>alert(1)</script>") {
				t.Errorf("plain session body %q: want the logged text unchanged", body)
			}
		}
		cancel()
		if got := res.Header.Get("Content-Security-Policy"); got != "sandbox; default-src 'none'" {
			t.Errorf("Accept %q: Content-Security-Policy = %q, want \"sandbox; default-src 'none'\"", accept, got)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("Accept %q: X-Content-Type-Options = %q, want nosniff", accept, got)
		}
	}
}
