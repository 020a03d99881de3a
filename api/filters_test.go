package api

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestV3DrainOptions(t *testing.T) {
	e := newEnv(t)
	e.call("PUT", "/v3/channels/c", `{}`)
	r := e.call("POST", "/v3/channels/c/drains", `{"url":"https://d.example.org/","filter":"severity <= 4","format":"rfc5424"}`)
	var d struct {
		ID     int64
		URL    string
		Filter string
		Format string
	}
	if err := json.Unmarshal([]byte(r.body), &d); err != nil || r.code != 201 || d.Filter != "severity <= 4" || d.Format != "rfc5424" {
		t.Fatalf("POST drain = %v", r)
	}
	path := "/v3/channels/c/drains/" + jsonNum(d.ID)
	if r := e.call("GET", path, ""); !strings.Contains(r.body, `"filter":"severity <= 4","format":"rfc5424"`) {
		t.Errorf("GET drain = %v", r)
	}
	if r := e.call("GET", "/v3/channels/c", ""); !strings.Contains(r.body, `"filter":"severity <= 4"`) {
		t.Errorf("GET channel = %v", r)
	}
	// PUT without options keeps them; with "filter":"" clears it.
	if r := e.call("PUT", path, `{"url":"https://e.example.org/"}`); r.code != 200 || !strings.Contains(r.body, `"filter":"severity <= 4"`) {
		t.Errorf("PUT url only = %v", r)
	}
	if r := e.call("PUT", path, `{"url":"https://e.example.org/","filter":"","format":"logplex"}`); r.code != 200 || strings.Contains(r.body, "filter") || strings.Contains(r.body, "format") {
		t.Errorf("PUT clearing = %v", r)
	}
	// Reserved drains may carry options too.
	if r := e.call("POST", "/v3/channels/c/drains", `{"filter":"app == \"web\""}`); r.code != 201 || !strings.Contains(r.body, `"filter":"app == \"web\""`) {
		t.Errorf("reserve with a filter = %v", r)
	}

	wantResp(t, "invalid filter", e.call("POST", "/v3/channels/c/drains", `{"url":"https://f.example.org/","filter":"severity <== 4"}`),
		422, "application/json", `{"error":"invalid filter: unexpected token Operator(\"=\") (1:12)","line":1,"column":12}`)
	wantResp(t, "unknown field", e.call("PUT", path, `{"url":"https://e.example.org/","filter":"sevrity < 3"}`),
		422, "application/json", `{"error":"invalid filter: unknown name sevrity (1:1)","line":1,"column":1}`)
	if r := e.call("POST", "/v3/channels/c/drains", `{"url":"https://f.example.org/","format":"json"}`); r.code != 400 {
		t.Errorf("unknown format = %v, want 400", r)
	}
	if r := e.call("POST", "/v3/channels/c/drains", `{"url":"https://f.example.org/","filter":3}`); r.code != 400 {
		t.Errorf("filter not a string = %v, want 400", r)
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

func urlQuery(s string) string { return url.QueryEscape(s) }

func TestSessionFilterAndFormat(t *testing.T) {
	e := newEnv(t)
	e.call("PUT", "/v3/channels/c", `{}`)
	e.appendRaw("c",
		`<134>1 2024-05-01T10:00:00Z host1 web web.1 - [origin@123 ip="1.2.3.4"] GET / 200`,
		`<131>1 2024-05-01T10:00:01Z host2 web web.2 - - GET /x 500`,
		`<131>1 2024-05-01T10:00:02Z host2 worker worker.1 - - job failed`,
		`<134>1 2024-05-01T10:00:03Z host1 web web.1 - - GET /y 200`,
	)
	get := func(body string) string {
		t.Helper()
		r := e.call("POST", "/v3/sessions", body)
		if r.code != 201 {
			t.Fatalf("POST /v3/sessions %s = %v", body, r)
		}
		var s struct{ URL string }
		_ = json.Unmarshal([]byte(r.body), &s)
		return e.do(req{method: "GET", url: s.URL}).body
	}
	if got, want := get(`{"channel_id":"c","filter":"severity <= 4"}`),
		"2024-05-01T10:00:01Z web[web.2]: GET /x 500\n2024-05-01T10:00:02Z worker[worker.1]: job failed\n"; got != want {
		t.Errorf("filter severity <= 4: %q, want %q", got, want)
	}
	// The legacy ps field combines with a filter.
	if got, want := get(`{"channel_id":"c","ps":"web","filter":"severity <= 4"}`), "2024-05-01T10:00:01Z web[web.2]: GET /x 500\n"; got != want {
		t.Errorf("ps + filter: %q, want %q", got, want)
	}
	if got, want := get(`{"channel_id":"c","num":"1","filter":"hostname == \"host1\""}`), "2024-05-01T10:00:03Z web[web.1]: GET /y 200\n"; got != want {
		t.Errorf("num 1 + filter: %q, want %q", got, want)
	}
	// rfc5424: HOSTNAME and SD as received.
	if got, want := get(`{"channel_id":"c","format":"rfc5424","filter":"sd(\"origin@123\", \"ip\") == \"1.2.3.4\""}`),
		`<134>1 2024-05-01T10:00:00Z host1 web web.1 - [origin@123 ip="1.2.3.4"] GET / 200`+"\n"; got != want {
		t.Errorf("rfc5424: %q, want %q", got, want)
	}

	wantResp(t, "invalid v3 filter", e.call("POST", "/v3/sessions", `{"channel_id":"c","filter":"msg contains"}`), 422, "application/json",
		`{"error":"invalid filter: unexpected token EOF (1:12)","line":1,"column":12}`)
	if r := e.call("POST", "/v2/sessions", `{"channel_id":"c","filter":"msg ~"}`); r.code != 422 || !strings.Contains(r.body, `"line":1`) {
		t.Errorf("invalid legacy filter = %v, want 422", r)
	}
	if r := e.call("POST", "/v3/sessions", `{"channel_id":"c","format":"xml"}`); r.code != 400 {
		t.Errorf("unknown format = %v, want 400", r)
	}
}

func TestV3LogsFilter(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.History = 10 }))
	e.call("PUT", "/v3/channels/c", `{}`)
	for i := range 8 {
		proc := "web.1"
		if i%2 == 1 {
			proc = "worker.1"
		}
		e.appendRaw("c", "<134>1 2024-05-01T10:00:00Z h app "+proc+" - - m"+jsonNum(int64(i)))
	}
	r := e.call("GET", "/v3/channels/c/logs?num=2&filter="+urlQuery(`procid startsWith "worker"`), "")
	want := "51 <134>1 2024-05-01T10:00:00Z host app worker.1 - m5\n" + "51 <134>1 2024-05-01T10:00:00Z host app worker.1 - m7\n"
	if r.code != 200 || r.body != want || r.header.Get("Logplex-Msg-Count") != "2" {
		t.Errorf("filtered page = %v count %s, want %q", r, r.header.Get("Logplex-Msg-Count"), want)
	}
	r = e.call("GET", "/v3/channels/c/logs?num=1&format=rfc5424&filter="+urlQuery(`msg == "m0"`), "")
	if want := "47 <134>1 2024-05-01T10:00:00Z h app web.1 - - m0\n"; r.body != want {
		t.Errorf("rfc5424 page = %q, want %q", r.body, want)
	}
	if r := e.call("GET", "/v3/channels/c/logs?filter="+urlQuery(`msg ==`), ""); r.code != 422 {
		t.Errorf("invalid filter = %v, want 422", r)
	}
}

func TestV3ChannelStats(t *testing.T) {
	e := newEnv(t)
	ch, toks := e.channel("web", "worker")
	for _, m := range []struct{ tok, procid string }{
		{toks["web"], "web.1"}, {toks["web"], "web.2"}, {toks["worker"], "worker.1"},
	} {
		if r := e.post(m.tok, msg(m.tok, m.procid, "x")); r.code != 204 {
			t.Fatalf("post = %v", r)
		}
	}
	r := e.call("GET", "/v3/channels/"+ch+"/stats", "")
	var s struct {
		ChannelID    string `json:"channel_id"`
		Total        struct{ Received uint64 }
		LastMinute   struct{ Received uint64 } `json:"last_minute"`
		Sources      map[string]struct{ Total struct{ Received uint64 } }
		ProcessTypes map[string]struct{ Total struct{ Received uint64 } } `json:"process_types"`
		Severities   map[string]struct{ Total struct{ Received uint64 } }
	}
	if err := json.Unmarshal([]byte(r.body), &s); err != nil || r.code != 200 {
		t.Fatalf("stats = %v", r)
	}
	if s.ChannelID != ch || s.Total.Received != 3 || s.LastMinute.Received != 3 ||
		s.Sources["web"].Total.Received != 2 || s.Sources["worker"].Total.Received != 1 ||
		s.ProcessTypes["web"].Total.Received != 2 || s.Severities["6"].Total.Received != 3 {
		t.Errorf("stats = %s", r.body)
	}
	if r := e.call("GET", "/v3/channels/nope/stats", ""); r.code != 404 {
		t.Errorf("unknown channel = %v", r)
	}
	// A channel without messages has zero counts.
	e.call("PUT", "/v3/channels/empty", `{}`)
	if r := e.call("GET", "/v3/channels/empty/stats", ""); r.code != 200 || !strings.Contains(r.body, `"total":{"received":0`) {
		t.Errorf("empty channel stats = %v", r)
	}
}
