package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/plexus-router/plexus/test/redistest"
)

// duplicateKeys returns the keys that appear more than once in one JSON
// log line (zerolog writes a key again when a field is added twice).
func duplicateKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %q", line)
	}
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := t.(string)
		if seen[k] {
			dups = append(dups, k)
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return dups, nil
}

func TestDuplicateKeysDetected(t *testing.T) {
	if d, err := duplicateKeys(`{"component":"a","x":1,"component":"b"}`); err != nil || len(d) != 1 || d[0] != "component" {
		t.Errorf("duplicateKeys = %v, %v; want [component]", d, err)
	}
}

// TestNodeLogHasNoDuplicateKeys: every line a node logs while starting,
// serving and stopping is a JSON object with each key once, with either
// backend.
func TestNodeLogHasNoDuplicateKeys(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { checkLogKeys(t) })
	t.Run("redis", func(t *testing.T) { checkLogKeys(t, "-redis-url", redistest.Start(t).URL()) })
}

func checkLogKeys(t *testing.T, extra ...string) {
	n, logs, stop := startNode(t, testNodeConfig(t, extra...))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	logs.mu.Lock()
	out := logs.b.String()
	logs.mu.Unlock()
	lines := 0
	for _, line := range bytes.Split([]byte(out), []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		lines++
		dups, err := duplicateKeys(string(line))
		if err != nil || len(dups) > 0 {
			t.Errorf("log line %s: duplicate keys %v (%v)", line, dups, err)
		}
	}
	if lines < 3 {
		t.Errorf("only %d log lines:\n%s", lines, out)
	}
}

// TestBuildInfoMetric: /metrics describes the running binary.
func TestBuildInfoMetric(t *testing.T) {
	n, _, _ := startNode(t, testNodeConfig(t))
	r, err := http.Get("http://" + n.addrs["api"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	re := regexp.MustCompile(`(?m)^plexus_build_info\{go_version="go[^"]+",revision="[^"]*",version="[^"]+"\} 1$`)
	if !re.Match(b) {
		t.Errorf("/metrics has no plexus_build_info line with go_version, revision and version:\n%s", grepLines(string(b), "build_info"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
