package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/router"
)

func TestDroppedNeedsTheAdminKey(t *testing.T) {
	e := newEnv(t)
	full, _ := e.store.CreateCred(context.Background(), "", true, true)
	wantResp(t, "no auth", e.do(req{method: "GET", url: e.api.URL + "/v3/dropped"}), 401, "", "")
	wantResp(t, "full_api cred", e.do(req{method: "GET", url: e.api.URL + "/v3/dropped", auth: basic(full.ID, full.Pass)}), 401, "", "")
	wantResp(t, "wrong key", e.do(req{method: "GET", url: e.api.URL + "/v3/dropped", auth: "Basic not-the-key"}), 401, "", "")
	wantResp(t, "POST is 405", e.call("POST", "/v3/dropped", ""), 405, "", "")
}

// The tap shows a line dropped by POST /logs with its reason, listener and
// peer, the token redacted.
func TestDroppedShowsHTTPInput(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rq, err := http.NewRequestWithContext(ctx, "GET", e.api.URL+"/v3/dropped", nil)
	if err != nil {
		t.Fatal(err)
	}
	rq.Header.Set("Authorization", admin)
	res, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("GET /v3/dropped = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}

	const tok = "t.00000000-0000-4000-8000-00000000dead"
	cred, _ := e.store.CreateCred(context.Background(), "", false, true)
	r := e.do(req{method: "POST", url: e.logs.URL + "/logs", auth: basic(cred.ID, cred.Pass),
		header: map[string]string{"Content-Type": "application/logplex-1"},
		body:   frames(msg(tok, "web.1", "hello "+tok))})
	if r.code != 400 || r.body != "Unknown token" {
		t.Fatalf("POST /logs with an unknown token = %v", r)
	}

	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue // keep-alive
		}
		if strings.Contains(sc.Text(), tok) {
			t.Errorf("the tap shows the token: %s", sc.Text())
		}
		var d router.Dropped
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		want := msg("t.…", "web.1", "hello t.…")
		if d.Reason != "unknown_token" || d.Listener != "http" || !strings.HasPrefix(d.RemoteAddr, "127.0.0.1:") || d.Line != want || d.Time.IsZero() {
			t.Errorf("dropped line %+v, want reason unknown_token, listener http, remote_addr 127.0.0.1:…, line %q", d, want)
		}
		return
	}
	t.Fatalf("stream ended without the dropped line: %v", sc.Err())
}
