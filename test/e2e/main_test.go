// Package e2e drives the built plexus binary the way users do: real HTTP
// requests, raw TCP/UDP/TLS syslog, real rsyslog daemons as forwarder and as
// drain receiver. Every server runs on 127.0.0.1 with ports chosen by the
// kernel and a temporary data directory.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/plexus-router/plexus/test/plexustest"
)

// binPath is the plexus binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := plexustest.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "plexus-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	out := filepath.Join(tmp, "plexus")
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/plexus")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/plexus: %v\n%s", err, b)
		return 1
	}
	binPath = out
	return m.Run()
}
