package e2e

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestV3API drives the v3 API as a client of Logplex's v3 would: idempotent
// channel PUT, tokens, channel logs, drains with Location headers, sessions
// and delete.
func TestV3API(t *testing.T) {
	s := start(t)
	type doc struct {
		Channel string            `json:"channel"`
		Tokens  map[string]string `json:"tokens"`
		Drains  []map[string]any  `json:"drains"`
	}
	put := func(body any, want int) doc {
		t.Helper()
		r := s.API(t, "PUT", "/v3/channels/app-1", body)
		mustStatus(t, "PUT /v3/channels/app-1", r, want)
		if r.Header.Get("Request-Id") == "" {
			t.Errorf("PUT answer has no request-id header")
		}
		var d doc
		r.JSON(t, &d)
		if d.Channel != "app-1" {
			t.Errorf("PUT answer channel %q", d.Channel)
		}
		return d
	}
	d1 := put(map[string]any{"tokens": []string{"a", "b"}}, http.StatusCreated)
	if len(d1.Tokens) != 2 || !isToken(d1.Tokens["a"]) || !isToken(d1.Tokens["b"]) {
		t.Fatalf("tokens %v", d1.Tokens)
	}
	if d2 := put(map[string]any{"tokens": []string{"a", "b"}}, http.StatusOK); !reflect.DeepEqual(d2.Tokens, d1.Tokens) {
		t.Errorf("repeated PUT changed tokens: %v → %v", d1.Tokens, d2.Tokens)
	}
	if d3 := put(map[string]any{"tokens": []string{"b"}}, http.StatusOK); !reflect.DeepEqual(d3.Tokens, map[string]string{"b": d1.Tokens["b"]}) {
		t.Errorf("PUT {b}: tokens %v, want only b = %s", d3.Tokens, d1.Tokens["b"])
	}
	r := s.API(t, "PUT", "/v3/channels/app-1", []int{1})
	mustStatus(t, "PUT with an array", r, http.StatusBadRequest)

	r = s.API(t, "POST", "/v3/channels/app-1/tokens", map[string]any{"name": "c"})
	mustStatus(t, "POST /v3/channels/app-1/tokens", r, http.StatusOK)
	var tk struct{ Name, Token string }
	r.JSON(t, &tk)
	if tk.Name != "c" || !isToken(tk.Token) {
		t.Errorf("token answer %s", r)
	}

	// Channel logs: re-rendered as octet-counted frames.
	tok := d1.Tokens["b"]
	s.mustPostLogs(t, tok, "<1>1 aaaa bbbb cccc dddd eeee - 0b0d2a5e-4a4d-4e68-8d6c-2f4c3c2b1a00")
	r = s.API(t, "GET", "/v3/channels/app-1/logs", nil)
	mustStatus(t, "GET /v3/channels/app-1/logs", r, http.StatusOK)
	if want := "64 <1>1 aaaa host cccc dddd - 0b0d2a5e-4a4d-4e68-8d6c-2f4c3c2b1a00\n"; string(r.Body) != want {
		t.Errorf("channel logs %q, want %q", r.Body, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/logplex-1" {
		t.Errorf("channel logs Content-Type %q", ct)
	}
	if n := r.Header.Get("Logplex-Msg-Count"); n != "1" {
		t.Errorf("channel logs Logplex-Msg-Count %q", n)
	}

	// Drains.
	r = s.API(t, "POST", "/v3/channels/app-1/drains", map[string]any{})
	mustStatus(t, "POST /v3/channels/app-1/drains {}", r, http.StatusCreated)
	var dr struct {
		ID    any    `json:"id"`
		Token string `json:"token"`
		URL   string `json:"url"`
	}
	r.JSON(t, &dr)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(dr.Token, "d.") || dr.URL != "" || !strings.Contains(loc, "/v3/channels/app-1/drains/") {
		t.Fatalf("reserve drain: %s, Location %q", r, loc)
	}
	drainPath := loc[strings.Index(loc, "/v3/"):]
	r = s.API(t, "PUT", drainPath, map[string]any{"url": "http://127.0.0.1:9/logs"})
	mustStatus(t, "PUT "+drainPath, r, http.StatusOK)
	r = s.API(t, "POST", "/v3/channels/app-1/drains", map[string]any{"url": "http://127.0.0.1:9/logs"})
	mustStatus(t, "POST a duplicate drain URL", r, http.StatusConflict)
	var got doc
	s.API(t, "GET", "/v3/channels/app-1", nil).JSON(t, &got)
	if len(got.Drains) != 1 || got.Drains[0]["url"] != "http://127.0.0.1:9/logs" {
		t.Errorf("GET channel drains %v", got.Drains)
	}
	mustStatus(t, "DELETE "+drainPath, s.API(t, "DELETE", drainPath, nil), http.StatusNoContent)
	mustStatus(t, "DELETE "+drainPath+" again", s.API(t, "DELETE", drainPath, nil), http.StatusNotFound)

	// Sessions.
	r = s.API(t, "POST", "/v3/sessions", map[string]any{"channel_id": "app-1", "num": "5"})
	mustStatus(t, "POST /v3/sessions", r, http.StatusCreated)
	var sess struct{ URL string }
	r.JSON(t, &sess)
	if r.Header.Get("Location") != sess.URL {
		t.Errorf("Location %q differs from url %q", r.Header.Get("Location"), sess.URL)
	}
	mustStatus(t, "POST /v3/sessions for an unknown channel",
		s.API(t, "POST", "/v3/sessions", map[string]any{"channel_id": "nope"}), http.StatusUnprocessableEntity)

	mustStatus(t, "DELETE /v3/channels/app-1", s.API(t, "DELETE", "/v3/channels/app-1", nil), http.StatusNoContent)
	mustStatus(t, "GET a deleted channel", s.API(t, "GET", "/v3/channels/app-1", nil), http.StatusNotFound)
	r = s.postLogs(t, tokenAuth(tok), "<134>1 2024-01-01T00:00:00Z host x web.1 - - after delete")
	mustStatus(t, "POST /logs with a deleted channel's token", r, http.StatusUnauthorized)
}
