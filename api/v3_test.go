package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/plexus-router/plexus/channels"
)

func TestV3Channels(t *testing.T) {
	e := newEnv(t)
	// PUT is idempotent: same token values on repeat; the token set follows
	// the body; every answer has a request-id.
	r := e.call("PUT", "/v3/channels/app-1", `{"tokens":["a","b"]}`)
	if r.code != 201 || r.header.Get("Content-Type") != "application/json" || r.header.Get("Request-Id") == "" {
		t.Fatalf("PUT new = %v %v", r, r.header)
	}
	golden(t, "v3_put_channel", redact(r.body))
	var first channelDoc
	if err := json.Unmarshal([]byte(r.body), &first); err != nil {
		t.Fatal(err)
	}
	r = e.call("PUT", "/v3/channels/app-1", `{"tokens":["a","b"]}`)
	var again channelDoc
	if err := json.Unmarshal([]byte(r.body), &again); err != nil || r.code != 200 {
		t.Fatalf("PUT again = %v", r)
	}
	if again.Tokens["a"] != first.Tokens["a"] || again.Tokens["b"] != first.Tokens["b"] {
		t.Errorf("PUT again changed tokens: %v → %v", first.Tokens, again.Tokens)
	}
	wantResp(t, "PUT only b", e.call("PUT", "/v3/channels/app-1", `{"tokens":["b"]}`), 200, "application/json",
		`{"channel":"app-1","tokens":{"b":"`+first.Tokens["b"]+`"}}`)
	wantResp(t, "PUT {}", e.call("PUT", "/v3/channels/app-1", `{}`), 200, "application/json", `{"channel":"app-1"}`)
	wantResp(t, "PUT empty body", e.call("PUT", "/v3/channels/app-2", ``), 201, "application/json", `{"channel":"app-2"}`)
	wantResp(t, "PUT [1]", e.call("PUT", "/v3/channels/app-1", `[1]`), 400, "application/json", `{"error":"invalid payload"}`)
	wantResp(t, "PUT bad tokens", e.call("PUT", "/v3/channels/app-1", `{"tokens":[1]}`), 400, "application/json", `{"error":"invalid payload"}`)
	wantResp(t, "PUT invalid JSON", e.call("PUT", "/v3/channels/app-1", `{"tok`), 400, "", "")

	r = e.call("PUT", "/v3/channels/app-1", `{"tokens":["x"]}`)
	if r.code != 200 {
		t.Fatal(r)
	}
	d, err := e.store.CreateDrain(context.Background(), "app-1", "https://example.org/logs", 0)
	if err != nil {
		t.Fatal(err)
	}
	r = e.call("GET", "/v3/channels/app-1", "")
	if r.code != 200 || !strings.Contains(r.body, fmt.Sprintf(`"drains":[{"id":%d,"token":"%s","url":"https://example.org/logs"}]`, d.ID, d.Token)) {
		t.Errorf("GET = %v", r)
	}
	golden(t, "v3_get_channel", redact(r.body))
	wantResp(t, "GET unknown", e.call("GET", "/v3/channels/nope", ""), 404, "", "")
	wantResp(t, "DELETE", e.call("DELETE", "/v3/channels/app-1", ""), 204, "", "")
	wantResp(t, "DELETE again", e.call("DELETE", "/v3/channels/app-1", ""), 404, "", "")
	if _, ok := e.store.LookupToken([]byte(again.Tokens["a"])); ok {
		t.Errorf("token of deleted channel still routes")
	}
}

func TestV3Checks(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path, body, auth string
		code                           int
		allow, want                    string
	}{
		{"POST channel is 405", "POST", "/v3/channels/a", `{}`, admin, 405, "DELETE, GET, PUT", ""},
		{"HEAD channel is 405", "HEAD", "/v3/channels/a", ``, admin, 405, "DELETE, GET, PUT", ""},
		{"405 before auth", "POST", "/v3/channels/a", `{}`, "", 405, "DELETE, GET, PUT", ""},
		{"malformed before auth", "PUT", "/v3/channels/a", `{"x`, "Basic wrong", 400, "", ""},
		{"no auth", "PUT", "/v3/channels/a", `{}`, "", 401, "", ""},
		{"wrong auth", "GET", "/v3/channels/a", ``, basic("ID", "PASS"), 401, "", ""},
		{"tokens need name", "POST", "/v3/channels/a/tokens", `{}`, "", 400, "", `{"error":"'name' must be a string"}`},
		{"drains invalid JSON bad auth", "POST", "/v3/channels/a/drains", `{"url":`, "", 400, "", ""},
		{"unknown v3 path", "GET", "/v3/nope", ``, admin, 404, "", ""},
		{"drain id not a number", "PUT", "/v3/channels/a/drains/x", `{}`, admin, 404, "", ""},
	}
	for _, tt := range tests {
		r := e.do(req{method: tt.method, url: e.api.URL + tt.path, body: tt.body, auth: tt.auth})
		if r.code != tt.code || r.header.Get("Allow") != tt.allow || r.body != tt.want || r.header.Get("Request-Id") == "" {
			t.Errorf("%s: %s %s = %d allow %q %q (request-id %q), want %d %q %q", tt.name, tt.method, tt.path,
				r.code, r.header.Get("Allow"), r.body, r.header.Get("Request-Id"), tt.code, tt.allow, tt.want)
		}
		if tt.code == 401 && r.header.Get("Www-Authenticate") != "Basic realm=Logplex" {
			t.Errorf("%s: WWW-Authenticate = %q", tt.name, r.header.Get("Www-Authenticate"))
		}
	}
	// A client request-id is echoed.
	r := e.do(req{method: "GET", url: e.api.URL + "/v3/channels/a", auth: admin, header: map[string]string{"Request-Id": "abc"}})
	if got := r.header.Get("Request-Id"); got != "abc" {
		t.Errorf("request-id = %q, want the client's", got)
	}
}

func TestV3Status(t *testing.T) {
	ro := newEnv(t, withConfig(func(c *Config) { c.APIStatus = StatusReadOnly }))
	if r := ro.call("GET", "/v3/channels/a", ""); r.code != 404 {
		t.Errorf("read_only GET = %v", r)
	}
	wantResp(t, "read_only PUT", ro.call("PUT", "/v3/channels/a", `{}`), 503, "", "")
	wantResp(t, "read_only PUT no auth", ro.do(req{method: "PUT", url: ro.api.URL + "/v3/channels/a", body: `{`}), 503, "", "")
	if r := ro.call("POST", "/channels", `{}`); r.code != 201 {
		t.Errorf("v3 read_only does not affect legacy: %v", r)
	}
	dis := newEnv(t, withConfig(func(c *Config) { c.APIStatus = StatusDisabled }))
	wantResp(t, "disabled GET", dis.call("GET", "/v3/channels/a", ""), 503, "", "")
	wantResp(t, "disabled creds", dis.call("GET", "/v3/creds", ""), 503, "", "")
	wantResp(t, "disabled healthcheck", dis.call("GET", "/v3/healthcheck", ""), 200, "text/plain", "OK")
	deny := newEnv(t, withConfig(func(c *Config) { c.DenyTails = true }))
	wantResp(t, "deny tails v3 session", deny.call("POST", "/v3/sessions", `{"channel_id":"1"}`), 503, "", "")
}

func TestV3Tokens(t *testing.T) {
	e := newEnv(t)
	e.call("PUT", "/v3/channels/c", `{}`)
	r := e.call("POST", "/v3/channels/c/tokens", `{"name":"app"}`)
	if r.code != 200 || !strings.HasPrefix(r.body, `{"token":"t.`) || !strings.HasSuffix(r.body, `","name":"app"}`) {
		t.Errorf("POST token = %v", r)
	}
	wantResp(t, "unknown channel", e.call("POST", "/v3/channels/nope/tokens", `{"name":"app"}`), 404, "", "")
	wantResp(t, "name not string", e.call("POST", "/v3/channels/c/tokens", `{"name":3}`), 400, "application/json", `{"error":"'name' must be a string"}`)
	wantResp(t, "array", e.call("POST", "/v3/channels/c/tokens", `["app"]`), 400, "application/json", `{"error":"invalid payload"}`)
}

func TestV3Drains(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.MaxDrains = 6 }))
	e.call("PUT", "/v3/channels/app-1", `{}`)
	r := e.call("POST", "/v3/channels/app-1/drains", `{}`)
	if r.code != 201 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("reserve = %v", r)
	}
	var d drainJSON
	if err := json.Unmarshal([]byte(r.body), &d); err != nil || d.URL != "" || !strings.HasPrefix(d.Token, "d.") {
		t.Fatalf("reserve body %s: %v", r.body, err)
	}
	if strings.Contains(r.body, "url") {
		t.Errorf("reserve body has url: %s", r.body)
	}
	if got, want := r.header.Get("Location"), fmt.Sprintf("http://v3.example/v3/channels/app-1/drains/%d", d.ID); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	golden(t, "v3_reserve_drain", redact(r.body))
	path := fmt.Sprintf("/v3/channels/app-1/drains/%d", d.ID)
	wantResp(t, "PUT url", e.call("PUT", path, `{"url":"http://127.0.0.1:9000/logs"}`), 200, "application/json",
		fmt.Sprintf(`{"id":%d,"token":"%s","url":"http://127.0.0.1:9000/logs"}`, d.ID, d.Token))
	wantResp(t, "POST same url", e.call("POST", "/v3/channels/app-1/drains", `{"url":"http://127.0.0.1:9000/logs"}`), 409, "application/json", `{"error":"already exists"}`)
	wantResp(t, "POST bad scheme", e.call("POST", "/v3/channels/app-1/drains", `{"url":"ftp://x"}`), 422, "application/json", `{"error":"Invalid drain destination: {unknown_scheme,\"ftp\"}"}`)
	wantResp(t, "POST unparseable", e.call("POST", "/v3/channels/app-1/drains", `{"url":"http://[::1"}`), 400, "application/json", `{"error":"Invalid drain destination: invalid_uri"}`)
	wantResp(t, "POST url not string", e.call("POST", "/v3/channels/app-1/drains", `{"url":5}`), 400, "application/json", `{"error":"invalid payload"}`)
	wantResp(t, "POST unknown channel", e.call("POST", "/v3/channels/nope/drains", `{"url":"http://x/"}`), 404, "", "")
	wantResp(t, "reserve unknown channel", e.call("POST", "/v3/channels/nope/drains", `{}`), 404, "", "")
	wantResp(t, "PUT no url", e.call("PUT", path, `{}`), 400, "application/json", `{"error":"invalid payload"}`)
	wantResp(t, "PUT unknown drain", e.call("PUT", "/v3/channels/app-1/drains/99999", `{"url":"http://x/"}`), 404, "", "")

	for i := 2; i <= 6; i++ {
		r := e.call("POST", "/v3/channels/app-1/drains", fmt.Sprintf(`{"url":"syslog://127.0.0.1:%d"}`, 9000+i))
		if r.code != 201 || r.header.Get("Location") == "" || !strings.Contains(r.body, fmt.Sprintf(`"url":"syslog://127.0.0.1:%d"`, 9000+i)) {
			t.Fatalf("drain %d = %v", i, r)
		}
	}
	wantResp(t, "7th drain", e.call("POST", "/v3/channels/app-1/drains", `{"url":"syslog://127.0.0.1:1"}`), 422, "application/json", `{"error":"maximum number of drains reached"}`)

	// GET (an extension) with the delivery status.
	e.srv.DrainStatus = func(id int64) (channels.DrainStatus, bool) {
		return channels.DrainStatus{Delivered: 3, LagMessages: 1}, id == d.ID
	}
	wantResp(t, "GET drain", e.call("GET", path, ""), 200, "application/json",
		fmt.Sprintf(`{"id":%d,"token":"%s","url":"http://127.0.0.1:9000/logs","status":{"delivered":3,"dropped":0,"lag_messages":1,"lag_seconds":0}}`, d.ID, d.Token))
	e.call("PUT", "/v3/channels/other", `{}`)
	wantResp(t, "GET drain of other channel", e.call("GET", fmt.Sprintf("/v3/channels/other/drains/%d", d.ID), ""), 404, "", "")
	wantResp(t, "DELETE other channel", e.call("DELETE", fmt.Sprintf("/v3/channels/other/drains/%d", d.ID), ""), 404, "", "")
	wantResp(t, "DELETE", e.call("DELETE", path, ""), 204, "", "")
	wantResp(t, "DELETE again", e.call("DELETE", path, ""), 404, "", "")
	wantResp(t, "bad auth", e.do(req{method: "DELETE", url: e.api.URL + path}), 401, "", "")
}

func TestV3Logs(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.History = 5 }))
	e.call("PUT", "/v3/channels/c", `{}`)
	e.appendRaw("c", "<1>1 aaaa bbbb cccc dddd eeee - 0b0d2a5e-4a4d-4e68-8d6c-2f4c3c2b1a00")
	r := e.call("GET", "/v3/channels/c/logs", "")
	if r.code != 200 || r.header.Get("Content-Type") != "application/logplex-1" || r.header.Get("Logplex-Msg-Count") != "1" ||
		r.body != "64 <1>1 aaaa host cccc dddd - 0b0d2a5e-4a4d-4e68-8d6c-2f4c3c2b1a00\n" {
		t.Fatalf("logs = %v %v", r, r.header)
	}
	e.appendRaw("c",
		"<42> blafasel",
		"<158>1 2018-03-02T23:22:34.901697+00:00 hermes.537018@staging.herokudev.com heroku router - - at=info code=H81",
		"<134>1 2012-12-10T03:00:48Z h app web.1 - [meta a=\"1\"] two\n",
	)
	want := "64 <1>1 aaaa host cccc dddd - 0b0d2a5e-4a4d-4e68-8d6c-2f4c3c2b1a00\n" +
		"78 <158>1 2018-03-02T23:22:34.901697+00:00 host heroku router - at=info code=H81\n" +
		"50 <134>1 2012-12-10T03:00:48Z host app web.1 - two\n\n"
	r = e.call("GET", "/v3/channels/c/logs?num=4", "")
	if r.header.Get("Logplex-Msg-Count") != "4" || r.body != want {
		t.Errorf("logs num=4 = count %s %q, want 4 %q", r.header.Get("Logplex-Msg-Count"), r.body, want)
	}
	r = e.call("GET", "/v3/channels/c/logs?num=2", "")
	if r.header.Get("Logplex-Msg-Count") != "2" || !strings.HasPrefix(r.body, "78 ") {
		t.Errorf("logs num=2 = %s %q", r.header.Get("Logplex-Msg-Count"), r.body)
	}
	r = e.call("GET", "/v3/channels/c/logs?num=x", "")
	if r.header.Get("Logplex-Msg-Count") != "4" {
		t.Errorf("num=x means 100: count %s", r.header.Get("Logplex-Msg-Count"))
	}
	for range 10 {
		e.appendRaw("c", "<1>1 t h a p - - m")
	}
	if r = e.call("GET", "/v3/channels/c/logs?num=-1", ""); r.header.Get("Logplex-Msg-Count") != "5" {
		t.Errorf("num=-1 is History (5): count %s", r.header.Get("Logplex-Msg-Count"))
	}
	wantResp(t, "unknown channel", e.call("GET", "/v3/channels/nope/logs", ""), 404, "", "")
}

func TestV3Sessions(t *testing.T) {
	e := newEnv(t)
	e.call("PUT", "/v3/channels/c", `{}`)
	r := e.call("POST", "/v3/sessions", `{"channel_id":"c","num":"10"}`)
	if r.code != 201 || !strings.HasPrefix(r.body, `{"url":"`+e.api.URL+`/sessions/`) ||
		r.header.Get("Location") == "" || !strings.Contains(r.body, r.header.Get("Location")) {
		t.Fatalf("POST /v3/sessions = %v %v", r, r.header)
	}
	wantResp(t, "unknown channel", e.call("POST", "/v3/sessions", `{"channel_id":"nope"}`), 422, "application/json", `{"error":"channel not found"}`)
	wantResp(t, "missing channel_id", e.do(req{method: "POST", url: e.api.URL + "/v3/sessions", body: `{"num":"1"}`}), 400, "application/json", `{"error":"'channel_id' missing"}`)
	wantResp(t, "bad JSON", e.call("POST", "/v3/sessions", `{`), 400, "application/json", `{"error":"invalid session JSON"}`)
}

// TestV3Nodes: a node alone (channels.SingleNode) lists itself as its
// Cluster describes it; an empty list is [], not null.
func TestV3Nodes(t *testing.T) {
	e := newEnv(t)
	r := e.call("GET", "/v3/nodes", "")
	var nodes []channels.Node
	if err := json.Unmarshal([]byte(r.body), &nodes); err != nil || r.code != 200 || len(nodes) != 1 ||
		nodes[0].ID != "node-1" || nodes[0].Addr != e.api.URL || !nodes[0].StartedAt.Equal(e.cluster.Node.StartedAt) {
		t.Errorf("nodes = %v (%v), want node-1 at %s", r, err, e.api.URL)
	}
	e.cluster.empty.Store(true)
	wantResp(t, "no nodes", e.call("GET", "/v3/nodes", ""), 200, "application/json", `[]`)
}
