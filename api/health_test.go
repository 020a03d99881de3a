package api

import (
	"context"
	"testing"

	"github.com/plexus-router/plexus/channels"
)

func TestHealthDegradedAndShuttingDown(t *testing.T) {
	e := newEnv(t)
	_, toks := e.channel("app")

	wantResp(t, "v3 healthy", e.call("GET", "/v3/healthcheck", ""), 200, "text/plain", "OK")
	reason := "redis unreachable: answering from the local buffer"
	e.cluster.degraded.Store(&reason)
	wantResp(t, "v3 degraded", e.call("GET", "/v3/healthcheck", ""), 200, "text/plain", "DEGRADED: "+reason)
	wantResp(t, "legacy degraded", e.do(req{method: "GET", url: e.api.URL + "/healthcheck", auth: "Basic " + adminKey}),
		200, "application/json", `{"degraded":"redis unreachable: answering from the local buffer","status":"normal"}`)
	if r := e.post(toks["app"], msg(toks["app"], "web.1", "accepted while degraded")); r.code != 204 {
		t.Errorf("POST /logs while degraded = %v, want 204", r)
	}

	e.srv.SetShuttingDown()
	wantResp(t, "v3 shutting down", e.call("GET", "/v3/healthcheck", ""), 503, "text/plain", "SHUTTING DOWN")
	wantResp(t, "logs shutting down", e.do(req{method: "GET", url: e.logs.URL + "/healthcheck"}), 503, "text/plain", "SHUTTING DOWN")
	r := e.post(toks["app"], msg(toks["app"], "web.1", "too late"))
	if r.code != 503 || r.body != "SHUTTING DOWN" || r.header.Get("Retry-After") == "" {
		t.Errorf("POST /logs while shutting down = %v (Retry-After %q), want 503 SHUTTING DOWN with Retry-After", r, r.header.Get("Retry-After"))
	}
}

// notReady is a store whose config has not been loaded yet.
type notReady struct{ channels.Store }

func (notReady) Ready() bool { return false }

func TestBootingRefusesInput(t *testing.T) {
	e := newEnv(t)
	ch, toks := e.channel("app")
	e.srv.Store = notReady{e.store}
	wantResp(t, "v3 booting", e.call("GET", "/v3/healthcheck", ""), 503, "text/plain", "SYSTEM BOOTING")
	if r := e.call("GET", "/v2/channels/"+ch, ""); r.code != 503 || r.body != "SYSTEM BOOTING" {
		t.Errorf("GET channel while booting = %v, want 503 SYSTEM BOOTING (not 404 for a channel that exists)", r)
	}
	r := e.post(toks["app"], msg(toks["app"], "web.1", "too early"))
	if r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("POST /logs while booting = %v (Retry-After %q), want 503 with Retry-After", r, r.header.Get("Retry-After"))
	}
	if info, _ := e.log.Info(context.Background(), ch); info.Next != 1 {
		t.Errorf("a message was stored while booting")
	}
}
