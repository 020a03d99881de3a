// Package cluster runs Plexus as a real cluster on loopback and checks
// what issue 4 promises: a config Redis and shard Redis servers
// (redis-server processes on unix sockets) and several plexus processes,
// all started by deploy/local-cluster.sh with the binary TestMain builds.
//
// The tests drive the nodes the way users do (v3 API, TCP syslog, HTTP
// POST /logs, SSE tail sessions, an HTTP drain receiver run by the test)
// and break them the way production does (kill -9 of a node, a shard's
// Redis restarted empty, a node cut off from the config Redis).
//
// Every wait is a poll with a deadline. Processes are ended by the stop
// script or by PID; nothing else is killed.
package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/plexustest"
)

var (
	binPath  string // the plexus binary built by TestMain
	rootDir  string // module root (holds go.mod and deploy/)
	helpText string // `plexus -h`
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := plexustest.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	rootDir = root
	tmp, err := os.MkdirTemp("", "plexus-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "plexus")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/plexus")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: go build ./cmd/plexus: %v\n%s", err, b)
		return 1
	}
	binPath = out
	h, _ := exec.Command(out, "-h").CombinedOutput() // -h exits non-zero
	helpText = string(h)
	code := m.Run()
	stopLeftovers()
	return code
}

// needTools skips the test when redis-server or redis-cli (used by the
// cluster script) is missing, or fails it when CI=true.
func needTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"redis-server", "redis-cli", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true: %s not found (%v); install it (apt-get install -y redis-server)", tool, err)
			}
			t.Skipf("%s not found (%v); skipping the cluster tests", tool, err)
		}
	}
}

// flagDefault returns the default of a duration flag documented by
// `plexus -h` whose name contains one of the words, e.g. "lease".
func flagDefault(words ...string) (name string, d time.Duration, ok bool) {
	re := regexp.MustCompile(`(?m)^\s*-([a-z0-9-]+) .*\(default "([^"]+)"\)`)
	for _, m := range re.FindAllStringSubmatch(helpText, -1) {
		for _, w := range words {
			if strings.Contains(m[1], w) {
				if v, err := time.ParseDuration(m[2]); err == nil {
					return m[1], v, true
				}
			}
		}
	}
	return "", 0, false
}
