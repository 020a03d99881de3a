package api

import "testing"

func TestProbes(t *testing.T) {
	e := newEnv(t)
	get := func(path string) resp { return e.do(req{method: "GET", url: e.api.URL + path}) } // no auth
	want := func(what string, r resp, code int, body string) {
		t.Helper()
		if r.code != code || r.body != body {
			t.Errorf("%s = %v, want %d %q", what, r, code, body)
		}
	}
	want("healthz", get("/healthz"), 200, "ok")
	want("readyz", get("/readyz"), 200, "ready")

	reason := "redis unreachable: answering from the local buffer"
	e.cluster.degraded.Store(&reason)
	want("readyz while the backend is unreachable", get("/readyz"), 503, "NOT READY: "+reason)
	want("healthz while the backend is unreachable", get("/healthz"), 200, "ok")
	e.cluster.degraded.Store(nil)

	store := e.srv.Store
	e.srv.Store = notReady{e.store}
	want("readyz while loading", get("/readyz"), 503, "SYSTEM BOOTING")
	want("healthz while loading", get("/healthz"), 200, "ok")
	e.srv.Store = store

	e.srv.SetShuttingDown()
	want("readyz while shutting down", get("/readyz"), 503, "SHUTTING DOWN")
}
