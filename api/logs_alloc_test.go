//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts mean nothing under -race: this file is left out of such builds.

package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/plexus-router/plexus/channels"
)

// TestPostLogsAllocsDoNotGrowWithMessages holds the "no per-message
// allocation" rule: a request of 200 messages allocates no more than a
// request of one, up to a small slack for buffers growing.
func TestPostLogsAllocsDoNotGrowWithMessages(t *testing.T) {
	e := newEnv(t, withRetention(channels.Retention{Count: 100}))
	_, tokens := e.channel("app")
	tok := tokens["app"]
	h := e.srv.LogsHandler()
	allocs := func(n int) float64 {
		var msgs []string
		for i := range n {
			msgs = append(msgs, msg(tok, "web.1", fmt.Sprintf("message %d", i)))
		}
		body := []byte(frames(msgs...))
		r, _ := http.NewRequest("POST", "/logs", nil)
		r.Header.Set("Authorization", basic("token", tok))
		r.Header.Set("Content-Type", "application/logplex-1")
		w := &discardWriter{h: http.Header{}}
		rd := bytes.NewReader(body)
		run := func() {
			rd.Reset(body)
			r.Body = io.NopCloser(rd)
			h.ServeHTTP(w, r)
		}
		for range 10 { // warm the pools
			run()
		}
		if w.code != http.StatusNoContent {
			t.Fatalf("POST /logs with %d messages: status %d, want %d", n, w.code, http.StatusNoContent)
		}
		return testing.AllocsPerRun(50, run)
	}
	one, many := allocs(1), allocs(200)
	t.Logf("allocs per request: %v (1 message), %v (200 messages)", one, many)
	if many > one+2 {
		t.Errorf("POST /logs allocates %v per request with 200 messages, %v with 1: allocation per message", many, one)
	}
}
