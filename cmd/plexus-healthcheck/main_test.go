package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDialAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{":8001", "127.0.0.1:8001"},
		{"0.0.0.0:8001", "127.0.0.1:8001"},
		{"[::]:8001", "[::1]:8001"},
		{"10.0.0.5:9000", "10.0.0.5:9000"},
		{"localhost:8001", "localhost:8001"},
	} {
		if got, err := dialAddr(tc.in); err != nil || got != tc.want {
			t.Errorf("dialAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if got, err := dialAddr("8001"); err == nil {
		t.Errorf("dialAddr(%q) = %q, want an error", "8001", got)
	}
}

// TestRun: 200 is healthy (exit 0), anything else or no answer unhealthy
// (exit 1); the address comes from PLEXUS_API_ADDR unless -addr is given.
func TestRun(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v3/healthcheck" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte("OK"))
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	env := func(k string) string {
		if k == "PLEXUS_API_ADDR" {
			return addr
		}
		return ""
	}

	var out bytes.Buffer
	if code := run(nil, env, &out, &out); code != 0 {
		t.Errorf("healthy node: exit %d, want 0; output %q", code, out.String())
	}
	status = http.StatusServiceUnavailable
	out.Reset()
	if code := run(nil, env, &out, &out); code != 1 || !strings.Contains(out.String(), "503") {
		t.Errorf("503: exit %d, output %q; want 1 and the status", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-addr", addr, "-path", "/healthz"}, env, &out, &out); code != 1 {
		t.Errorf("404 on -path /healthz: exit %d, want 1; output %q", code, out.String())
	}

	// Nothing listening: unhealthy.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	out.Reset()
	if code := run([]string{"-addr", closed}, env, &out, &out); code != 1 {
		t.Errorf("nothing listening: exit %d, want 1; output %q", code, out.String())
	}
}
