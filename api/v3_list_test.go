package api

import (
	"encoding/json"
	"testing"
)

func TestV3ListChannels(t *testing.T) {
	e := newEnv(t)
	if r := e.call("PUT", "/v3/channels/b-app", `{"tokens":["web"]}`); r.code != 201 {
		t.Fatalf("PUT = %v", r)
	}
	if r := e.call("PUT", "/v3/channels/a-app", ``); r.code != 201 {
		t.Fatalf("PUT = %v", r)
	}
	r := e.call("GET", "/v3/channels", "")
	var docs []struct {
		Channel string
		Tokens  map[string]string
	}
	if r.code != 200 || json.Unmarshal([]byte(r.body), &docs) != nil {
		t.Fatalf("GET /v3/channels = %v, want 200 and a JSON list", r)
	}
	if len(docs) != 2 || docs[0].Channel != "a-app" || docs[1].Channel != "b-app" || docs[1].Tokens["web"] == "" {
		t.Errorf("GET /v3/channels = %s, want a-app then b-app with its token web", r.body)
	}
}
