package api

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

var tokenRE = regexp.MustCompile(`^t\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestLegacyChannelLifecycle(t *testing.T) {
	e := newEnv(t)

	// Create: channel_id is a JSON integer, tokens an object.
	r := e.call("POST", "/channels", `{"name":"a","tokens":["app","heroku"]}`)
	if r.code != 201 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("POST /channels = %v %q", r, r.header.Get("Content-Type"))
	}
	var created struct {
		ChannelID json.Number       `json:"channel_id"`
		Tokens    map[string]string `json:"tokens"`
	}
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&created); err != nil || !strings.HasPrefix(r.body, `{"channel_id":1,`) {
		t.Fatalf("POST /channels body %s: %v", r.body, err)
	}
	for _, name := range []string{"app", "heroku"} {
		if !tokenRE.MatchString(created.Tokens[name]) {
			t.Errorf("token %s = %q", name, created.Tokens[name])
		}
	}
	golden(t, "legacy_create_channel", redact(r.body))
	id := created.ChannelID.String()

	wantResp(t, "POST /channels without tokens", e.call("POST", "/channels", `{"name":"b"}`),
		201, "application/json", `{"channel_id":2,"tokens":[]}`)
	wantResp(t, "POST /channels empty body", e.call("POST", "/channels", ``),
		201, "application/json", `{"channel_id":3,"tokens":[]}`)

	// Drains for the channel documents.
	r = e.call("POST", "/v2/channels/"+id+"/drains", `{"url":"syslog://127.0.0.1"}`)
	if r.code != 201 || !strings.Contains(r.body, `"url":"syslog://127.0.0.1:601"`) {
		t.Fatalf("POST v2 drain = %v", r)
	}
	golden(t, "legacy_create_drain", redact(r.body))
	r = e.call("POST", "/v2/channels/"+id+"/drains", `{"host":"logs.example.com","port":1514}`)
	if r.code != 201 || !strings.Contains(r.body, `"url":"syslog://logs.example.com:1514"`) {
		t.Fatalf("POST v2 drain host/port = %v", r)
	}
	rr := e.call("POST", "/channels/"+id+"/drains/tokens", "")
	if rr.code != 201 || rr.header.Get("Content-Type") != "text/html" {
		t.Fatalf("reserve = %v", rr)
	}
	golden(t, "legacy_reserve_drain", redact(rr.body))

	// Documents: v2 lists tokens as objects, info as a name → token object;
	// the reserved drain (no URL) is not listed.
	r = e.call("GET", "/v2/channels/"+id, "")
	if r.code != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v2/channels = %v", r)
	}
	golden(t, "legacy_get_channel", redact(r.body))
	r = e.call("GET", "/channels/"+id+"/info", "")
	if r.code != 200 || r.header.Get("Content-Type") != "text/html" {
		t.Fatalf("GET info = %v", r)
	}
	golden(t, "legacy_channel_info", redact(r.body))
	wantResp(t, "GET info empty", e.call("GET", "/channels/2/info", ""), 200, "text/html", `{"channel_id":2,"tokens":[],"drains":[]}`)
	wantResp(t, "GET v2 empty", e.call("GET", "/v2/channels/2", ""), 200, "application/json", `{"channel_id":2,"tokens":[],"drains":[]}`)

	// Deletes.
	wantResp(t, "DELETE /v2/channels", e.call("DELETE", "/v2/channels/2", ""), 200, "text/html", "")
	wantResp(t, "DELETE /v2/channels again", e.call("DELETE", "/v2/channels/2", ""), 404, "application/json", `{"error":"Not Found"}`)
	wantResp(t, "DELETE /channels", e.call("DELETE", "/channels/3", ""), 200, "text/html", "OK")
	wantResp(t, "DELETE /channels again", e.call("DELETE", "/channels/3", ""), 404, "text/html", "Not found")
	wantResp(t, "GET deleted", e.call("GET", "/v2/channels/3", ""), 404, "application/json", `{"error":"Not Found"}`)
}

func TestLegacyTable(t *testing.T) {
	e := newEnv(t)
	id, _ := e.channel("app")
	other, _ := e.channel()
	ctx := context.Background()
	d, err := e.store.CreateDrain(ctx, id, "https://example.org/logs", 0)
	if err != nil {
		t.Fatal(err)
	}
	reserved, err := e.store.ReserveDrain(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	drain := fmt.Sprint(d.ID)
	tests := []struct {
		name         string
		method, path string
		body         string
		auth         string
		code         int
		ctype, want  string // want: exact body, or a prefix when it ends with "…"
	}{
		{"healthcheck", "GET", "/healthcheck", "", admin, 200, "application/json", `{"status":"normal"}`},
		{"healthcheck no auth", "GET", "/healthcheck", "", "", 401, "text/html", "Not Authorized"},
		{"healthcheck wrong key", "GET", "/healthcheck", "", "Basic nope", 401, "text/html", "Not Authorized"},
		{"healthcheck base64 of key", "GET", "/healthcheck", "", basic("x", adminKey), 401, "text/html", "Not Authorized"},
		{"load is not served", "POST", "/load", `["x"]`, admin, 404, "text/html", "Not found"},
		{"unknown path", "GET", "/nope", "", admin, 404, "text/html", "Not found"},
		{"wrong method is 404", "PUT", "/channels", "", admin, 404, "text/html", "Not found"},
		{"channel name not a string", "POST", "/channels", `{"name":5}`, admin, 400, "text/html", "Channel name must be a string."},
		{"channel malformed JSON", "POST", "/channels", `{"name":`, admin, 400, "application/json", `{"error":"invalid JSON"}`},
		{"channel tokens not a list", "POST", "/channels", `{"tokens":"app"}`, admin, 400, "application/json", `{"error":"'tokens' must be a list of strings"}`},
		{"v2 channel not digits", "GET", "/v2/channels/12x", "", admin, 404, "text/html", "Not found"},
		{"v2 channel unknown", "GET", "/v2/channels/999999", "", admin, 404, "application/json", `{"error":"Not Found"}`},
		{"info unknown", "GET", "/channels/999999/info", "", admin, 404, "text/html", "Not found"},
		{"token v1", "POST", "/channels/" + id + "/token", `{"name":"x"}`, admin, 201, "text/html", "t.…"},
		{"token v1 missing name", "POST", "/channels/" + id + "/token", `{}`, admin, 400, "text/html", "'name' post param missing"},
		{"token v2", "POST", "/v2/channels/" + id + "/tokens", `{"name":"y"}`, admin, 201, "application/json", `{"name":"y","token":"t.…`},
		{"token v2 missing name", "POST", "/v2/channels/" + id + "/tokens", `{}`, admin, 422, "text/html", `{"error":"NAME is a required field"}`},
		{"token v2 name not string", "POST", "/v2/channels/" + id + "/tokens", `{"name":1}`, admin, 422, "text/html", `{"error":"NAME is a required field"}`},
		{"v1 drain create", "POST", "/channels/" + id + "/drains", `{}`, admin, 501, "text/html", "V1 Drain Creation API deprecated."},
		{"v1 drain create id", "POST", "/channels/" + id + "/drains/5", `{}`, admin, 501, "text/html", "V1 Drain Creation API deprecated"},
		{"v1 drains list", "GET", "/channels/" + id + "/drains", "", admin, 501, "text/html", "V1 Drain API Deprecated."},
		{"v1 drains delete", "DELETE", "/channels/" + id + "/drains", "", admin, 501, "text/html", "V1 Drain API Deprecated."},
		{"v1 deprecated needs auth", "GET", "/channels/" + id + "/drains", "", "", 401, "text/html", "Not Authorized"},
		{"v2 drain bad scheme", "POST", "/v2/channels/" + id + "/drains", `{"url":"ftp://x"}`, admin, 422, "application/json", `{"error":"Invalid drain destination: {unknown_scheme,\"ftp\"}"}`},
		{"v2 drain syslog+tcp", "POST", "/v2/channels/" + id + "/drains", `{"url":"syslog+tcp://x:1"}`, admin, 422, "application/json", `{"error":"Invalid drain destination: invalid_tcpsyslog_uri"}`},
		{"v2 drain no url", "POST", "/v2/channels/" + id + "/drains", `{}`, admin, 422, "application/json", `{"error":"Invalid drain destination: missing_host_param"}`},
		{"v2 drain port string", "POST", "/v2/channels/" + id + "/drains", `{"host":"h","port":"x"}`, admin, 422, "application/json", `{"error":"Invalid drain destination: invalid_port"}`},
		{"v2 drain duplicate", "POST", "/v2/channels/" + id + "/drains", `{"url":"https://example.org/logs"}`, admin, 409, "application/json", `{"error":"Already exists"}`},
		{"v2 drain unknown channel", "POST", "/v2/channels/999999/drains", `{"url":"https://example.org/x"}`, admin, 404, "application/json", `{"error":"No such channel"}`},
		{"v2 drain url with query", "POST", "/v2/channels/" + id + "/drains", `{"url":"https://example.org/in?a=1&b=2"}`, admin, 201, "application/json", `{"id":…`},
		{"v2 fill unknown drain", "POST", "/v2/channels/" + id + "/drains/999999", `{"url":"https://example.org/z"}`, admin, 404, "application/json", `{"error":"Unknown drain."}`},
		{"v2 fill other channel", "POST", "/v2/channels/" + other + "/drains/" + drain, `{"url":"https://example.org/z"}`, admin, 404, "application/json", `{"error":"Unknown drain."}`},
		{"v2 fill duplicate", "POST", "/v2/channels/" + id + "/drains/" + fmt.Sprint(reserved.ID), `{"url":"https://example.org/logs"}`, admin, 409, "application/json", `{"error":"Already exists"}`},
		{"v2 fill reserved", "POST", "/v2/channels/" + id + "/drains/" + fmt.Sprint(reserved.ID), `{"url":"syslog+tls://h.example"}`, admin, 201, "application/json", fmt.Sprintf(`{"id":%d,"token":"%s","url":"syslog+tls://h.example:6514"}`, reserved.ID, reserved.Token)},
		{"v2 update drain", "POST", "/v2/channels/" + id + "/drains/" + drain, `{"url":"https://example.org/new"}`, admin, 201, "application/json", fmt.Sprintf(`{"id":%d,"token":"%s","url":"https://example.org/new"}`, d.ID, d.Token)},
		{"v2 update invalid keeps drain", "POST", "/v2/channels/" + id + "/drains/" + drain, `{"url":"ftp://x"}`, admin, 422, "application/json", `{"error":"Invalid drain destination: {unknown_scheme,\"ftp\"}"}`},
		{"v2 delete drain other channel", "DELETE", "/v2/channels/" + other + "/drains/" + drain, "", admin, 404, "application/json", `{"error":"Not found"}`},
		{"v2 delete drain", "DELETE", "/v2/channels/" + id + "/drains/" + drain, "", admin, 200, "text/html", ""},
		{"v2 delete drain again", "DELETE", "/v2/channels/" + id + "/drains/" + drain, "", admin, 404, "application/json", `{"error":"Not found"}`},
		{"session v1", "POST", "/sessions", `{"channel_id":"` + id + `"}`, admin, 201, "text/html", e.api.URL + "/sessions/…"},
		{"session v2", "POST", "/v2/sessions", `{"channel_id":"` + id + `"}`, admin, 201, "application/json", `{"url":"` + e.api.URL + `/sessions/…`},
		{"session canary", "POST", "/v2/canary-sessions", `{"channel_id":"` + id + `"}`, admin, 201, "application/json", `{"url":"/v2/canary-fetch/…`},
		{"session needs auth", "POST", "/v2/sessions", `{"channel_id":"` + id + `"}`, "", 401, "text/html", "Not Authorized"},
		{"metrics need no auth", "GET", "/metrics", "", "", 200, "text/plain; version=0.0.4; charset=utf-8; escaping=underscores", "…"},
	}
	for _, tt := range tests {
		r := e.do(req{method: tt.method, url: e.api.URL + tt.path, body: tt.body, auth: tt.auth})
		ok := r.code == tt.code && r.header.Get("Content-Type") == tt.ctype
		if prefix, found := strings.CutSuffix(tt.want, "…"); found {
			ok = ok && strings.HasPrefix(r.body, prefix)
		} else {
			ok = ok && r.body == tt.want
		}
		if !ok {
			t.Errorf("%s: %s %s = %d %q %q, want %d %q %q", tt.name, tt.method, tt.path,
				r.code, r.header.Get("Content-Type"), r.body, tt.code, tt.ctype, tt.want)
		}
	}
	// The drain whose update was invalid is still there.
	if _, err := e.store.Drain(ctx, reserved.ID); err != nil {
		t.Errorf("filled drain: %v", err)
	}
}

func TestLegacyInvalidFillDeletesReservedDrain(t *testing.T) {
	e := newEnv(t)
	id, _ := e.channel()
	d, err := e.store.ReserveDrain(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r := e.call("POST", fmt.Sprintf("/v2/channels/%s/drains/%d", id, d.ID), `{"url":"ftp://x"}`)
	if r.code != 422 {
		t.Fatalf("fill = %v", r)
	}
	if _, err := e.store.Drain(context.Background(), d.ID); err == nil {
		t.Errorf("reserved drain kept after an invalid fill")
	}
}

func TestLegacyMaxDrains(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.MaxDrains = 2 }))
	id, _ := e.channel()
	for i := range 2 {
		if r := e.call("POST", "/v2/channels/"+id+"/drains", fmt.Sprintf(`{"url":"https://example.org/%d"}`, i)); r.code != 201 {
			t.Fatalf("drain %d = %v", i, r)
		}
	}
	wantResp(t, "third drain", e.call("POST", "/v2/channels/"+id+"/drains", `{"url":"https://example.org/x"}`),
		422, "application/json", `{"error":"You have already added the maximum number of drains allowed"}`)
	d, err := e.store.ReserveDrain(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	wantResp(t, "fill beyond max", e.call("POST", fmt.Sprintf("/v2/channels/%s/drains/%d", id, d.ID), `{"url":"https://example.org/y"}`),
		422, "application/json", `{"error":"You have already added the maximum number of drains allowed"}`)
}

func TestLegacyStatus(t *testing.T) {
	ro := newEnv(t, withConfig(func(c *Config) { c.LegacyStatus = StatusReadOnly }))
	id, _ := ro.channel("app")
	wantResp(t, "read_only POST /channels (no auth)", ro.do(req{method: "POST", url: ro.api.URL + "/channels", body: `{}`}),
		503, "text/html", "Logplex API temporarily in read-only mode")
	wantResp(t, "read_only POST /v2/sessions", ro.call("POST", "/v2/sessions", `{"channel_id":"1"}`),
		503, "text/html", "Logplex API temporarily in read-only mode")
	if r := ro.call("GET", "/v2/channels/"+id, ""); r.code != 200 {
		t.Errorf("read_only GET /v2/channels = %v", r)
	}
	if r := ro.call("POST", "/v2/canary-sessions", `{"channel_id":"1"}`); r.code != 201 {
		t.Errorf("read_only canary = %v", r)
	}
	wantResp(t, "read_only healthcheck", ro.call("GET", "/healthcheck", ""), 200, "application/json", `{"status":"read_only"}`)
	if r := ro.call("PUT", "/v3/channels/x", `{}`); r.code != 200 && r.code != 201 {
		t.Errorf("read_only legacy does not affect v3: %v", r)
	}

	dis := newEnv(t, withConfig(func(c *Config) { c.LegacyStatus = StatusDisabled }))
	for _, p := range []string{"/healthcheck", "/v2/channels/1", "/nope", "/sessions/0b0d2a5e-4a4d-4e68-8d6c-2f4c3c2b1a00"} {
		wantResp(t, "disabled GET "+p, dis.call("GET", p, ""), 503, "text/html", "Service Temporarily Disabled")
	}
	wantResp(t, "disabled POST /channels", dis.call("POST", "/channels", `{}`), 503, "text/html", "Service Temporarily Disabled")
	if r := dis.call("GET", "/v3/healthcheck", ""); r.code != 200 {
		t.Errorf("disabled legacy does not affect v3 healthcheck: %v", r)
	}
}
