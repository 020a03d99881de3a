package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
	"github.com/plexus-router/plexus/channels/stats"
	"github.com/plexus-router/plexus/router"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const adminKey = "secret-admin-key"

// env is a Plexus HTTP side on real listeners with the embedded store and
// log and the real router.
type env struct {
	t       testing.TB
	srv     *Server
	store   *embedded.Store
	log     *embedded.Log
	cluster *testCluster
	api     *httptest.Server
	logs    *httptest.Server
	reg     *prometheus.Registry
}

// testCluster is a node alone (channels.SingleNode) whose degradation and
// node list a test can change while the server runs.
type testCluster struct {
	channels.SingleNode
	degraded atomic.Pointer[string]
	empty    atomic.Bool // Nodes lists nobody
}

func (c *testCluster) Degraded() string {
	if p := c.degraded.Load(); p != nil {
		return *p
	}
	return c.SingleNode.Degraded()
}

func (c *testCluster) Nodes(ctx context.Context) ([]channels.Node, error) {
	if c.empty.Load() {
		return nil, nil
	}
	return c.SingleNode.Nodes(ctx)
}

type envOption func(*Server, *embedded.LogConfig)

func withConfig(f func(*Config)) envOption {
	return func(s *Server, _ *embedded.LogConfig) { f(&s.Config) }
}

func withRetention(r channels.Retention) envOption {
	return func(_ *Server, c *embedded.LogConfig) { c.Default = r }
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	store, err := embedded.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := prometheus.NewRegistry()
	srv := &Server{
		Config: Config{
			AuthKey:     adminKey,
			SessionWait: 300 * time.Millisecond,
			Heartbeat:   15 * time.Second,
		},
		Store:    store,
		Logger:   zerolog.New(io.Discard),
		Metrics:  NewMetrics(reg),
		Gatherer: reg,
	}
	lc := embedded.LogConfig{Dir: t.TempDir()}
	for _, o := range opts {
		o(srv, &lc)
	}
	log, err := embedded.OpenLog(lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	srv.Log = log
	srv.Router = routerFor(store, log)
	e := &env{t: t, srv: srv, store: store, log: log, reg: reg}
	e.api = httptest.NewUnstartedServer(nil)
	e.logs = httptest.NewServer(nil)
	e.api.Start()
	if srv.Config.APIURL == "" {
		srv.Config.APIURL = e.api.URL
	}
	e.cluster = &testCluster{SingleNode: channels.SingleNode{Node: channels.Node{
		ID: "node-1", Addr: e.api.URL, StartedAt: time.Now().UTC().Truncate(time.Second),
	}}}
	srv.Cluster = e.cluster
	srv.Config.V3URL = "http://v3.example"
	e.api.Config.Handler = srv.APIHandler()
	e.logs.Config.Handler = srv.LogsHandler()
	t.Cleanup(e.logs.Close)
	t.Cleanup(e.api.Close)
	return e
}

// resp is a complete response.
type resp struct {
	code   int
	header http.Header
	body   string
}

func (r resp) String() string { return fmt.Sprintf("%d %q", r.code, r.body) }

// req is a request description for do.
type req struct {
	method, url string
	body        string
	auth        string // Authorization header value; "" none
	header      map[string]string
}

func (e *env) do(q req) resp {
	e.t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r, err := http.NewRequestWithContext(e.t.Context(), q.method, q.url, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if q.auth != "" {
		r.Header.Set("Authorization", q.auth)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", q.method, q.url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", q.method, q.url, err)
	}
	return resp{res.StatusCode, res.Header, string(b)}
}

const admin = "Basic " + adminKey

// call is do on the API listener with the admin key.
func (e *env) call(method, path, body string) resp {
	e.t.Helper()
	return e.do(req{method: method, url: e.api.URL + path, body: body, auth: admin})
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// post sends frames to POST /logs with token auth.
func (e *env) post(token string, msgs ...string) resp {
	e.t.Helper()
	return e.do(req{method: "POST", url: e.logs.URL + "/logs", body: frames(msgs...), auth: basic("token", token),
		header: map[string]string{"Content-Type": "application/logplex-1", "Logplex-Msg-Count": fmt.Sprint(len(msgs))}})
}

func frames(msgs ...string) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d %s", len(m), m)
	}
	return b.String()
}

// msg is an RFC 5424 message as log-shuttle sends it, token in APP-NAME.
func msg(token, procid, text string) string {
	return "<134>1 2012-12-10T03:00:48.123456Z erlang " + token + " " + procid + " - - " + text
}

// channel creates a legacy channel with the named tokens and returns its id
// and tokens by name.
func (e *env) channel(names ...string) (string, map[string]string) {
	e.t.Helper()
	ch, tokens, err := e.store.CreateChannel(context.Background(), "", names)
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]string{}
	for _, t := range tokens {
		m[t.Name] = t.ID
	}
	return ch.ID, m
}

// appendRaw appends stored messages directly to a channel log.
func (e *env) appendRaw(ch string, msgs ...string) {
	e.t.Helper()
	b := &channels.Batch{ChannelID: ch, Time: time.Now().UnixNano()}
	for _, m := range msgs {
		b.Add([]byte(m))
	}
	if err := e.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
		e.t.Fatal(err)
	}
}

func wantResp(t *testing.T, what string, got resp, code int, ctype, body string) {
	t.Helper()
	if got.code != code || got.header.Get("Content-Type") != ctype || got.body != body {
		t.Errorf("%s = %d %q %q, want %d %q %q", what, got.code, got.header.Get("Content-Type"), got.body, code, ctype, body)
	}
}

var redactions = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`t\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`), "t.<uuid>"},
	{regexp.MustCompile(`d\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`), "d.<uuid>"},
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`), "<uuid>"},
	{regexp.MustCompile(`\b[0-9A-F]{64}\b`), "<pass>"},
	{regexp.MustCompile(`\b[0-9A-F]{32}\b`), "<cred>"},
	{regexp.MustCompile(`http://127\.0\.0\.1:\d+`), "http://api"},
}

// redact replaces random ids in an API body so it can be compared with a
// golden file.
func redact(s string) string {
	for _, r := range redactions {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// golden compares got with testdata/<name>.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(want, []byte(got)) {
		t.Errorf("%s:\ngot  %s\nwant %s", name, got, want)
	}
}

// eventually polls cond until it holds or 5 s passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func routerFor(store channels.Store, log channels.Log) *router.Router {
	rt := router.New(store, log, nil)
	rt.SetStats(stats.NewRegistry())
	return rt
}

// metric returns the value of one sample of GET /metrics ("name{labels}").
func (e *env) metric(sample string) float64 {
	e.t.Helper()
	r := e.do(req{method: "GET", url: e.api.URL + "/metrics"})
	for _, line := range strings.Split(r.body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				e.t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return 0
}
