package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// cred is a credential created through the credentials API.
type cred struct {
	ID   string `json:"id"`
	Pass string `json:"pass"`
}

func (s *Server) createCred(t testing.TB, name string, fullAPI, anyChannel bool) cred {
	t.Helper()
	r := s.API(t, "POST", "/v3/creds", map[string]any{"name": name, "full_api": fullAPI, "any_channel": anyChannel})
	mustStatus(t, "POST /v3/creds", r, http.StatusCreated)
	var c cred
	r.JSON(t, &c)
	if len(c.ID) == 0 || len(c.Pass) == 0 {
		t.Fatalf("POST /v3/creds: no id or pass in %s", r)
	}
	return c
}

// TestReadmeWalkthrough replays Logplex's README walkthrough over real HTTP:
// create a credential, check health with it, create a channel, post a log
// message, create a session, fetch it.
func TestReadmeWalkthrough(t *testing.T) {
	s := start(t)
	api := "http://" + s.Addrs.API

	// Unauthenticated healthchecks.
	r := do(t, "GET", "http://"+s.Addrs.Logs+"/healthcheck", "", nil)
	mustStatus(t, "GET logs /healthcheck", r, http.StatusOK)
	r = do(t, "GET", api+"/v3/healthcheck", "", nil)
	mustStatus(t, "GET /v3/healthcheck", r, http.StatusOK)
	if string(r.Body) != "OK" {
		t.Errorf("GET /v3/healthcheck body %q, want OK", r.Body)
	}

	// The operator creates a credential with the admin key.
	c := s.createCred(t, "walkthrough", true, false)
	if !isUpperHex(c.ID, 32) || !isUpperHex(c.Pass, 64) {
		t.Errorf("cred id %q / pass (len %d): want 32 and 64 uppercase hex characters", c.ID, len(c.Pass))
	}
	auth := credAuth(c.ID, c.Pass)

	r = do(t, "GET", api+"/healthcheck", auth, nil)
	mustStatus(t, "GET /healthcheck with the credential", r, http.StatusOK)
	var health struct{ Status string }
	r.JSON(t, &health)
	if health.Status != "normal" {
		t.Errorf("healthcheck status %q, want normal", health.Status)
	}
	r = do(t, "GET", api+"/healthcheck", "", nil)
	mustStatus(t, "GET /healthcheck without auth", r, http.StatusUnauthorized)
	if string(r.Body) != "Not Authorized" {
		t.Errorf("unauthorized healthcheck body %q, want Not Authorized", r.Body)
	}

	// Create a channel with the credential.
	r = do(t, "POST", api+"/channels", auth, map[string]any{"name": "walkthrough", "tokens": []string{"app"}})
	mustStatus(t, "POST /channels with the credential", r, http.StatusCreated)
	ch := parseChannel(t, r, 1)
	tok := ch.Tokens["app"]
	if !isToken(tok) {
		t.Fatalf("token %q does not look like t.<uuid v4>", tok)
	}

	// Post the README's message with token auth.
	msg := "<134>1 2012-12-10T03:00:48.123456Z erlang " + tok + " console.1 - - Logsplat test message 1"
	if f := frame(msg); !strings.HasPrefix(f, "118 ") {
		t.Fatalf("frame %q: want the README's 118-byte frame", f)
	}
	r = s.postLogs(t, tokenAuth(tok), msg)
	mustStatus(t, "POST /logs", r, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Errorf("POST /logs 204 with body %q", r.Body)
	}

	// A session shows it at once: 204 means stored.
	r = do(t, "POST", api+"/v2/sessions", auth, map[string]any{"channel_id": ch.ID, "num": "10"})
	mustStatus(t, "POST /v2/sessions", r, http.StatusCreated)
	var sess struct{ URL string }
	r.JSON(t, &sess)
	u := s.sessionURL(t, sess.URL)
	r = do(t, "GET", u, "", nil)
	mustStatus(t, "GET session", r, http.StatusOK)
	const want = "2012-12-10T03:00:48.123456Z app[console.1]: Logsplat test message 1\n"
	if string(r.Body) != want {
		t.Errorf("session body\n got %q\nwant %q", r.Body, want)
	}
	// Fetching the same session again gives the same history.
	r = do(t, "GET", u, "", nil)
	if r.Status != http.StatusOK || string(r.Body) != want {
		t.Errorf("second GET of the session: %s, want 200 %q", r, want)
	}
}

// TestCredentials checks the credentials API and the permissions a
// credential carries on the management API and on HTTP input.
func TestCredentials(t *testing.T) {
	s := start(t)
	api := "http://" + s.Addrs.API
	a := s.createChannel(t, "a", "app")
	b := s.createChannel(t, "b", "app")

	full := s.createCred(t, "full", true, false)
	writer := s.createCred(t, "writer", false, true)

	// Only the admin key manages credentials.
	r := do(t, "POST", api+"/v3/creds", credAuth(full.ID, full.Pass), map[string]any{"name": "x", "full_api": true})
	if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		t.Errorf("POST /v3/creds with a full_api credential: %s, want 401 or 403", r)
	}
	r = do(t, "GET", api+"/v3/creds", "", nil)
	mustStatus(t, "GET /v3/creds without auth", r, http.StatusUnauthorized)

	// List shows both.
	r = s.API(t, "GET", "/v3/creds", nil)
	mustStatus(t, "GET /v3/creds", r, http.StatusOK)
	for _, id := range []string{full.ID, writer.ID} {
		if !strings.Contains(string(r.Body), id) {
			t.Errorf("GET /v3/creds does not list %s: %s", id, r)
		}
	}

	// A credential without full_api cannot use the management API.
	r = do(t, "GET", api+"/healthcheck", credAuth(writer.ID, writer.Pass), nil)
	mustStatus(t, "healthcheck with an any_channel-only credential", r, http.StatusUnauthorized)
	r = do(t, "GET", api+"/healthcheck", credAuth(full.ID, "WRONG"+full.Pass[5:]), nil)
	mustStatus(t, "healthcheck with a wrong password", r, http.StatusUnauthorized)

	// any_channel: each frame is routed by its own token.
	msgA := "<134>1 2024-05-01T10:00:00.000001Z host " + a.Tokens["app"] + " web.1 - - to a"
	msgB := "<134>1 2024-05-01T10:00:00.000002Z host " + b.Tokens["app"] + " web.2 - - to b"
	r = s.postLogs(t, credAuth(writer.ID, writer.Pass), msgA, msgB)
	mustStatus(t, "POST /logs with an any_channel credential", r, http.StatusNoContent)
	if got, want := s.history(t, a.ID, 10), "2024-05-01T10:00:00.000001Z app[web.1]: to a\n"; got != want {
		t.Errorf("channel a history %q, want %q", got, want)
	}
	if got, want := s.history(t, b.ID, 10), "2024-05-01T10:00:00.000002Z app[web.2]: to b\n"; got != want {
		t.Errorf("channel b history %q, want %q", got, want)
	}

	// A credential without any_channel may not write.
	r = s.postLogs(t, credAuth(full.ID, full.Pass), msgA)
	mustStatus(t, "POST /logs with a credential lacking any_channel", r, http.StatusForbidden)
	if string(r.Body) != "Credential not permitted to write to any channel." {
		t.Errorf("403 body %q", r.Body)
	}

	// Revoke: the credential stops working at once.
	r = s.API(t, "DELETE", "/v3/creds/"+full.ID, nil)
	if r.Status != http.StatusOK && r.Status != http.StatusNoContent {
		t.Fatalf("DELETE /v3/creds/%s: %s, want 200 or 204", full.ID, r)
	}
	r = do(t, "GET", api+"/healthcheck", credAuth(full.ID, full.Pass), nil)
	mustStatus(t, "healthcheck with a revoked credential", r, http.StatusUnauthorized)
	r = s.API(t, "GET", "/v3/creds", nil)
	if strings.Contains(string(r.Body), full.ID) {
		t.Errorf("GET /v3/creds still lists the revoked credential: %s", r)
	}
}

func isUpperHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isToken reports whether s is "t." followed by a lowercase UUID v4.
func isToken(s string) bool {
	if len(s) != 38 || !strings.HasPrefix(s, "t.") {
		return false
	}
	u := s[2:]
	for i := 0; i < 36; i++ {
		c := u[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return u[14] == '4' && strings.ContainsRune("89ab", rune(u[19]))
}
