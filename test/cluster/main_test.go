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
	"testing"

	"github.com/plexus-router/plexus/test/plexustest"
)

var (
	binPath string // the plexus binary built by TestMain
	rootDir string // module root (holds go.mod and deploy/)
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
	code := m.Run()
	stopLeftovers()
	return code
}

// needTools ends the test when a program the cluster script runs is
// missing: a loud skip, a failure under CI=true (plexustest.Missing).
func needTools(t testing.TB) {
	t.Helper()
	plexustest.NeedProgram(t, "redis-server", "redis-server")
	plexustest.NeedProgram(t, "redis-cli", "redis-tools")
	plexustest.NeedProgram(t, "bash", "bash")
}
