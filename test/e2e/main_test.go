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
	"strings"
	"testing"

	"github.com/plexus-router/plexus/test/plexustest"
)

// binPath is the plexus binary built once by TestMain ("" when it could not
// be built because cmd/plexus does not exist yet).
var (
	binPath   string
	binReason string // why binPath is empty
	helpText  string // output of `plexus -h`
)

// inCI reports whether missing tools must fail tests instead of skipping them.
func inCI() bool { return os.Getenv("CI") == "true" }

// skipOrFail skips the test, or fails it under CI=true.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

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

	if _, err := os.Stat(filepath.Join(root, "cmd", "plexus")); err != nil {
		binReason = "cmd/plexus does not exist yet"
	} else {
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
		h, _ := exec.Command(out, "-h").CombinedOutput() // -h may exit non-zero
		helpText = string(h)
	}
	return m.Run()
}

// needBinary skips (or fails under CI) when the binary is not available.
func needBinary(t testing.TB) {
	t.Helper()
	if binPath == "" {
		skipOrFail(t, "plexus binary not built: %s", binReason)
	}
}

// hasFlag reports whether `plexus -h` documents flag name (without dash).
func hasFlag(name string) bool {
	return strings.Contains(helpText, "-"+name+" ") || strings.Contains(helpText, "-"+name+"\n") ||
		strings.Contains(helpText, "-"+name+"=") || strings.Contains(helpText, "-"+name+"\t")
}
