package api

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestCreds(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/v3/creds", `{"name":"local-test","full_api":true,"any_channel":true}`)
	if r.code != 201 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("POST /v3/creds = %v", r)
	}
	golden(t, "creds_create", redact(r.body))
	var c struct{ ID, Pass string }
	if err := json.Unmarshal([]byte(r.body), &c); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9A-F]{32}$`).MatchString(c.ID) || !regexp.MustCompile(`^[0-9A-F]{64}$`).MatchString(c.Pass) {
		t.Errorf("cred id %q pass %q", c.ID, c.Pass)
	}
	r = e.call("POST", "/v3/creds", ``)
	if r.code != 201 || !strings.Contains(r.body, `"name":"","full_api":false,"any_channel":false}`) {
		t.Errorf("POST empty = %v", r)
	}
	r = e.call("GET", "/v3/creds", "")
	if r.code != 200 || strings.Contains(r.body, "pass") || strings.Count(r.body, `"id"`) != 2 {
		t.Errorf("GET /v3/creds = %v", r)
	}

	// Only the admin key manages credentials, not a full_api credential.
	full := basic(c.ID, c.Pass)
	wantResp(t, "full_api cred lists creds", e.do(req{method: "GET", url: e.api.URL + "/v3/creds", auth: full}), 401, "", "")
	wantResp(t, "full_api cred creates creds", e.do(req{method: "POST", url: e.api.URL + "/v3/creds", body: `{}`, auth: full}), 401, "", "")
	wantResp(t, "bad payload", e.call("POST", "/v3/creds", `{"full_api":"yes"}`), 400, "application/json", `{"error":"invalid payload"}`)
	wantResp(t, "PUT is 405", e.call("PUT", "/v3/creds", `{}`), 405, "", "")
	// ... but it uses the management API.
	if r := e.do(req{method: "GET", url: e.api.URL + "/healthcheck", auth: full}); r.code != 200 {
		t.Errorf("healthcheck with cred = %v", r)
	}
	if r := e.do(req{method: "GET", url: e.api.URL + "/v3/channels/x", auth: full}); r.code != 404 {
		t.Errorf("v3 with cred = %v", r)
	}
	if r := e.do(req{method: "GET", url: e.api.URL + "/healthcheck", auth: basic(c.ID, "wrong")}); r.code != 401 {
		t.Errorf("wrong password = %v", r)
	}

	wantResp(t, "DELETE", e.call("DELETE", "/v3/creds/"+c.ID, ""), 204, "", "")
	wantResp(t, "DELETE again", e.call("DELETE", "/v3/creds/"+c.ID, ""), 404, "", "")
	if r := e.do(req{method: "GET", url: e.api.URL + "/healthcheck", auth: full}); r.code != 401 {
		t.Errorf("revoked cred = %v", r)
	}
	// A credential without full_api cannot use the management API.
	r = e.call("POST", "/v3/creds", `{"any_channel":true}`)
	if err := json.Unmarshal([]byte(r.body), &c); err != nil {
		t.Fatal(err)
	}
	if r := e.do(req{method: "GET", url: e.api.URL + "/healthcheck", auth: basic(c.ID, c.Pass)}); r.code != 401 {
		t.Errorf("cred without full_api = %v", r)
	}
}

// TestReadmeWalkthrough replays Logplex's README: create a credential,
// check health with it, create a channel, post a message, create a
// session and fetch it.
func TestReadmeWalkthrough(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/v3/creds", `{"name":"local-test","full_api":true,"any_channel":true}`)
	var c struct{ ID, Pass string }
	if err := json.Unmarshal([]byte(r.body), &c); err != nil || r.code != 201 {
		t.Fatalf("create cred = %v", r)
	}
	auth := basic(c.ID, c.Pass)
	wantResp(t, "healthcheck", e.do(req{method: "GET", url: e.api.URL + "/healthcheck", auth: auth}),
		200, "application/json", `{"status":"normal"}`)

	r = e.do(req{method: "POST", url: e.api.URL + "/channels", auth: auth, body: `{"tokens": ["app"]}`})
	var ch struct {
		ChannelID int               `json:"channel_id"`
		Tokens    map[string]string `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(r.body), &ch); err != nil || r.code != 201 {
		t.Fatalf("create channel = %v", r)
	}
	tok := ch.Tokens["app"]

	line := "<134>1 2012-12-10T03:00:48.123456Z erlang " + tok + " console.1 - - Logsplat test message 1"
	r = e.do(req{method: "POST", url: e.logs.URL + "/logs", auth: basic("token", tok), body: "118 " + line,
		header: map[string]string{"Content-Type": "application/logplex-1", "Logplex-Msg-Count": "1"}})
	wantResp(t, "post log", r, 204, "", "")

	r = e.do(req{method: "POST", url: e.api.URL + "/v2/sessions", auth: auth, body: `{"channel_id": "1", "num": "10"}`})
	var sess struct{ URL string }
	if err := json.Unmarshal([]byte(r.body), &sess); err != nil || r.code != 201 || !strings.HasPrefix(sess.URL, e.api.URL+"/sessions/") {
		t.Fatalf("create session = %v", r)
	}
	r = e.do(req{method: "GET", url: sess.URL})
	wantResp(t, "fetch session", r, 200, "text/html", "2012-12-10T03:00:48.123456Z app[console.1]: Logsplat test message 1\n")
	// A session can be fetched again until it expires.
	wantResp(t, "fetch session again", e.do(req{method: "GET", url: sess.URL}), 200, "text/html", "2012-12-10T03:00:48.123456Z app[console.1]: Logsplat test message 1\n")
}
