package api

import (
	"testing"
)

func TestHealthDegradedAndShuttingDown(t *testing.T) {
	var reason string
	e := newEnv(t)
	e.srv.Degraded = func() string { return reason }

	wantResp(t, "v3 healthy", e.call("GET", "/v3/healthcheck", ""), 200, "text/plain", "OK")
	reason = "redis unreachable: answering from the local buffer"
	wantResp(t, "v3 degraded", e.call("GET", "/v3/healthcheck", ""), 200, "text/plain", "DEGRADED: "+reason)
	wantResp(t, "legacy degraded", e.do(req{method: "GET", url: e.api.URL + "/healthcheck", auth: "Basic " + adminKey}),
		200, "application/json", `{"degraded":"redis unreachable: answering from the local buffer","status":"normal"}`)

	e.srv.SetShuttingDown()
	wantResp(t, "v3 shutting down", e.call("GET", "/v3/healthcheck", ""), 503, "text/plain", "SHUTTING DOWN")
	wantResp(t, "logs shutting down", e.do(req{method: "GET", url: e.logs.URL + "/healthcheck"}), 503, "text/plain", "SHUTTING DOWN")
}
