package e2e

import (
	"net/http"
	"testing"
)

// TestModesFromLogplexEnv configures a node only with Logplex's environment
// names: admin key, legacy API read-only, ingress and tail deny switches.
func TestModesFromLogplexEnv(t *testing.T) {
	key := "env-" + randomKey()
	s := startEnv(t, []string{"LOGPLEX_AUTH_KEY=" + key, "LEGACY_API_STATUS=read_only",
		"DENY_LOGS_INGRESS=true", "DENY_TAIL_SESSIONS=true"})
	api := "http://" + s.Addrs.API

	r := do(t, "GET", api+"/healthcheck", "Basic "+key, nil)
	mustStatus(t, "healthcheck with LOGPLEX_AUTH_KEY", r, http.StatusOK)
	var h struct{ Status string }
	r.JSON(t, &h)
	if h.Status != "read_only" {
		t.Errorf("healthcheck status %q, want read_only", h.Status)
	}
	r = do(t, "POST", api+"/channels", "", map[string]any{"name": "x"})
	mustStatus(t, "POST /channels in read_only (no auth)", r, http.StatusServiceUnavailable)
	if string(r.Body) != "Logplex API temporarily in read-only mode" {
		t.Errorf("read-only body %q", r.Body)
	}

	// The v3 API is not read-only: make a channel there.
	r = s.API(t, "PUT", "/v3/channels/modes", map[string]any{"tokens": []string{"app"}})
	mustStatus(t, "PUT /v3/channels/modes", r, http.StatusCreated)
	var ch struct{ Tokens map[string]string }
	r.JSON(t, &ch)
	mustStatus(t, "POST /v2/canary-sessions in read_only",
		s.API(t, "POST", "/v2/canary-sessions", map[string]any{"channel_id": "modes"}), http.StatusCreated)

	r = s.postLogs(t, tokenAuth(ch.Tokens["app"]), "<134>1 2024-01-01T00:00:00Z host x web.1 - - denied")
	mustStatus(t, "POST /logs with DENY_LOGS_INGRESS", r, http.StatusServiceUnavailable)
	mustStatus(t, "POST /v3/sessions with DENY_TAIL_SESSIONS",
		s.API(t, "POST", "/v3/sessions", map[string]any{"channel_id": "modes"}), http.StatusServiceUnavailable)
}

// TestModesFromFlags: a disabled legacy API and a read-only, then disabled,
// v3 API.
func TestModesFromFlags(t *testing.T) {
	s := start(t, "-legacy-api-status", "disabled", "-api-status", "read_only")
	r := s.API(t, "GET", "/healthcheck", nil)
	mustStatus(t, "legacy healthcheck when disabled", r, http.StatusServiceUnavailable)
	if string(r.Body) != "Service Temporarily Disabled" {
		t.Errorf("disabled body %q", r.Body)
	}
	mustStatus(t, "POST /channels when disabled", s.API(t, "POST", "/channels", map[string]any{}), http.StatusServiceUnavailable)
	mustStatus(t, "GET /v3/channels/x when read_only", s.API(t, "GET", "/v3/channels/x", nil), http.StatusNotFound)
	mustStatus(t, "PUT /v3/channels/x when read_only", s.API(t, "PUT", "/v3/channels/x", map[string]any{}), http.StatusServiceUnavailable)

	s2 := start(t, "-api-status", "disabled")
	mustStatus(t, "GET /v3/channels/x when disabled", s2.API(t, "GET", "/v3/channels/x", nil), http.StatusServiceUnavailable)
	mustStatus(t, "GET /v3/healthcheck when disabled", do(t, "GET", "http://"+s2.Addrs.API+"/v3/healthcheck", "", nil), http.StatusOK)
	mustStatus(t, "legacy POST /channels when only v3 is disabled", s2.API(t, "POST", "/channels", map[string]any{}), http.StatusCreated)
}
