package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/plexus-router/plexus/channels"
)

// stored returns the messages in a channel log.
func (e *env) stored(ch string) []string {
	e.t.Helper()
	var recs channels.Records
	var out []string
	cur := channels.Cursor{}
	for {
		res, err := e.log.Read(context.Background(), ch, cur, 1000, 0, &recs)
		if err != nil {
			e.t.Fatal(err)
		}
		for i := 0; i < recs.Len(); i++ {
			out = append(out, string(recs.At(i).Data))
		}
		if recs.Len() == 0 {
			return out
		}
		cur = res.Next
	}
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = io.WriteString(w, s)
	_ = w.Close()
	return b.String()
}

func TestLogsInput(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.MaxBody = 12000 }))
	ch, tokens := e.channel("app")
	tok := tokens["app"]
	ctx := context.Background()
	anyCred, _ := e.store.CreateCred(ctx, "shuttle", false, true)
	apiCred, _ := e.store.CreateCred(ctx, "api", true, false)
	good := msg(tok, "console.1", "Logsplat test message 1")
	const ct = "application/logplex-1"
	big := strings.Repeat("x", 13000)
	tests := []struct {
		name   string
		method string
		path   string
		auth   string
		header map[string]string
		body   string
		code   int
		want   string
		stored int // messages this request adds to the channel
	}{
		{"token auth", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct, "Logplex-Msg-Count": "1"}, frames(good), 204, "", 1},
		{"trailing slash, x-logplex", "POST", "/logs/", basic("token", tok), map[string]string{"Content-Type": "application/x-logplex-1"}, frames(good, good), 204, "", 2},
		{"empty body", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct}, "", 204, "", 0},
		{"gzip", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct, "Content-Encoding": "gzip", "Logplex-Msg-Count": "1"}, gz(frames(good)), 204, "", 1},
		{"bad gzip", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct, "Content-Encoding": "gzip"}, "not gzip", 400, "Bad request", 0},
		{"gzip bomb", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct, "Content-Encoding": "gzip"}, gz(big), 413, "Request body too large", 0},
		{"too large", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct}, big, 413, "Request body too large", 0},
		{"deflate", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct, "Content-Encoding": "deflate"}, frames(good), 415, "", 0},
		{"count mismatch", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct, "Logplex-Msg-Count": "2"}, frames(good), 400, "Message count mismatch", 0},
		{"count not int", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct, "Logplex-Msg-Count": "x"}, frames(good), 400, "Message count mismatch", 0},
		{"newline framing", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct}, good + "\n", 400, "Malformed log messages", 0},
		{"truncated frame", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct}, frames(good)[:50], 400, "Malformed log messages", 0},
		{"frame 10240", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct}, frames(good + strings.Repeat("y", 10240-len(good))), 204, "", 1},
		{"frame 10241", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct}, "10241 " + strings.Repeat("y", 10241) + "\n", 400, "Malformed log messages", 0},
		{"text/plain", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": "text/plain"}, frames(good), 415, "", 0},
		{"content type with params", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct + "; charset=utf-8"}, frames(good), 415, "", 0},
		{"accept json", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct, "Accept": "application/json"}, frames(good), 406, "", 0},
		{"accept any", "POST", "/logs", basic("token", tok), map[string]string{"Content-Type": ct, "Accept": "application/json, */*;q=0.1"}, frames(good), 204, "", 1},
		{"no auth", "POST", "/logs", "", map[string]string{"Content-Type": ct}, frames(good), 401, "", 0},
		{"bad base64", "POST", "/logs", "Basic %%%", map[string]string{"Content-Type": ct}, frames(good), 401, "", 0},
		{"unknown token", "POST", "/logs", basic("token", "t.0b0d2a5e-4a4d-4e68-8d6c-2f4c3c2b1a00"), map[string]string{"Content-Type": ct}, frames(good), 401, "", 0},
		{"admin key", "POST", "/logs", admin, map[string]string{"Content-Type": ct}, frames(good), 401, "", 0},
		{"wrong cred pass", "POST", "/logs", basic(anyCred.ID, "nope"), map[string]string{"Content-Type": ct}, frames(good), 401, "", 0},
		{"cred without any_channel", "POST", "/logs", basic(apiCred.ID, apiCred.Pass), map[string]string{"Content-Type": ct}, frames(good), 403, "Credential not permitted to write to any channel.", 0},
		{"any_channel cred", "POST", "/logs", basic(anyCred.ID, anyCred.Pass), map[string]string{"Content-Type": ct}, frames(good, good), 204, "", 2},
		{"any_channel unknown token: nothing stored", "POST", "/logs", basic(anyCred.ID, anyCred.Pass), map[string]string{"Content-Type": ct},
			frames(good, msg("t.0b0d2a5e-4a4d-4e68-8d6c-2f4c3c2b1a00", "web.1", "x")), 400, "Unknown token", 0},
		{"any_channel no token: nothing stored", "POST", "/logs", basic(anyCred.ID, anyCred.Pass), map[string]string{"Content-Type": ct},
			frames(good, "<134>1 2012-12-10T03:00:48Z h app web.1 - - x"), 400, "Malformed log messages", 0},
		{"GET", "GET", "/logs", basic("token", tok), nil, "", 405, "", 0},
		{"unknown path", "POST", "/other", basic("token", tok), nil, "", 404, "Not found", 0},
	}
	total := 0
	for _, tt := range tests {
		r := e.do(req{method: tt.method, url: e.logs.URL + tt.path, auth: tt.auth, header: tt.header, body: tt.body})
		if r.code != tt.code || r.body != tt.want {
			t.Errorf("%s: %d %q, want %d %q", tt.name, r.code, r.body, tt.code, tt.want)
		}
		switch tt.code {
		case 401:
			if got := r.header.Get("Www-Authenticate"); got != "Basic realm=Logplex" {
				t.Errorf("%s: WWW-Authenticate %q", tt.name, got)
			}
		case 405:
			if got := r.header.Get("Allow"); got != "POST" {
				t.Errorf("%s: Allow %q", tt.name, got)
			}
		}
		total += tt.stored
		if got := len(e.stored(ch)); got != total {
			t.Fatalf("%s: %d messages stored, want %d", tt.name, got, total)
		}
	}
	// Stored messages are cooked: the token replaced by its name.
	if got, want := e.stored(ch)[0], msg("app", "console.1", "Logsplat test message 1"); got != want {
		t.Errorf("stored %q, want %q", got, want)
	}
	if got := e.metric(`plexus_http_logs_requests_total{code="204"}`); got != 7 {
		t.Errorf("204 requests counted %v, want 7", got)
	}
	if got := e.metric("plexus_http_logs_messages_total"); got != float64(total) {
		t.Errorf("messages counted %v, want %d", got, total)
	}
}

func TestLogsAnyChannelRoutesEachMessage(t *testing.T) {
	e := newEnv(t)
	ch1, t1 := e.channel("app")
	ch2, t2 := e.channel("web")
	cred, _ := e.store.CreateCred(context.Background(), "", false, true)
	r := e.do(req{method: "POST", url: e.logs.URL + "/logs", auth: basic(cred.ID, cred.Pass),
		header: map[string]string{"Content-Type": "application/logplex-1"},
		body:   frames(msg(t1["app"], "a.1", "one"), msg(t2["web"], "b.1", "two"))})
	if r.code != 204 {
		t.Fatal(r)
	}
	if got := e.stored(ch1); len(got) != 1 || got[0] != msg("app", "a.1", "one") {
		t.Errorf("channel 1: %q", got)
	}
	if got := e.stored(ch2); len(got) != 1 || got[0] != msg("web", "b.1", "two") {
		t.Errorf("channel 2: %q", got)
	}
}

func TestLogsDenyIngressAndHealthcheck(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.DenyIngress = true }))
	_, tokens := e.channel("app")
	if r := e.post(tokens["app"], msg(tokens["app"], "p", "x")); r.code != 503 {
		t.Errorf("deny ingress = %v", r)
	}
	for _, m := range []string{"GET", "POST", "HEAD"} {
		r := e.do(req{method: m, url: e.logs.URL + "/healthcheck"})
		want := "OK"
		if m == "HEAD" {
			want = ""
		}
		if r.code != 200 || r.body != want {
			t.Errorf("%s /healthcheck = %v", m, r)
		}
	}
}

// fullLog admits nothing: Append and AppendDurable wait for their context
// like a full buffer.
type fullLog struct{ channels.Log }

func (fullLog) Append(ctx context.Context, _ []*channels.Batch) error {
	<-ctx.Done()
	return channels.ErrLogFull
}

func (l fullLog) AppendDurable(ctx context.Context, b []*channels.Batch) error {
	return l.Append(ctx, b)
}

func TestLogsLogFull(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.AppendTimeout = 10e6 }))
	_, tokens := e.channel("app")
	e.srv.Router = routerFor(e.store, fullLog{e.log})
	r := e.post(tokens["app"], msg(tokens["app"], "p", "x"))
	if r.code != 503 || r.header.Get("Retry-After") != "1" {
		t.Errorf("full log = %v %v", r, r.header)
	}
}

func TestLogsContentLengthTooLarge(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.MaxBody = 100 }))
	_, tokens := e.channel("app")
	body := frames(strings.Repeat("x", 200))
	r, _ := http.NewRequest("POST", e.logs.URL+"/logs", strings.NewReader(body))
	r.Header.Set("Authorization", basic("token", tokens["app"]))
	r.Header.Set("Content-Type", "application/logplex-1")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Errorf("status %d, want 413", res.StatusCode)
	}
}

func BenchmarkPostLogs(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("msgs=%d", n), func(b *testing.B) {
			e := newEnv(b)
			_, tokens := e.channel("app")
			tok := tokens["app"]
			var msgs []string
			for i := range n {
				msgs = append(msgs, msg(tok, "web.1", fmt.Sprintf("message %d with some text to make it about two hundred bytes long ......................................................", i)))
			}
			body := []byte(frames(msgs...))
			h := e.srv.LogsHandler()
			auth := basic("token", tok)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r, _ := http.NewRequest("POST", "/logs", bytes.NewReader(body))
				r.Header.Set("Authorization", auth)
				r.Header.Set("Content-Type", "application/logplex-1")
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, r)
				if w.code != 204 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

func TestLogsIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	ch, tokens := e.channel("app")
	tok := tokens["app"]
	good := msg(tok, "console.1", "keyed")
	post := func(key string) resp {
		h := map[string]string{"Content-Type": "application/logplex-1"}
		if key != "" {
			h["Idempotency-Key"] = key
		}
		return e.do(req{method: "POST", url: e.logs.URL + "/logs", auth: basic("token", tok), header: h, body: frames(good, good)})
	}
	for i, tt := range []struct {
		key    string
		code   int
		stored int
	}{
		{"host/1:2:0:ab/0", 204, 2},
		{"host/1:2:0:ab/0", 204, 2}, // the repeat: 204, stored once
		{"host/1:2:0:ab/100", 204, 4},
		{"", 204, 6},
		{"", 204, 8}, // no key: stored every time
		{"bad key", 400, 8},
		{strings.Repeat("k", MaxIdempotencyKey+1), 400, 8},
	} {
		if r := post(tt.key); r.code != tt.code {
			t.Errorf("%d: POST with key %q = %d %q, want %d", i, tt.key, r.code, r.body, tt.code)
		}
		if got := len(e.stored(ch)); got != tt.stored {
			t.Fatalf("%d: after key %q %d messages stored, want %d", i, tt.key, got, tt.stored)
		}
	}
}
