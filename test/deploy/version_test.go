package deploy

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plexus-router/plexus/test/plexustest"
)

// TestMakeBuildVersion: make build embeds git describe of the checkout,
// and plexus -version prints it.
func TestMakeBuildVersion(t *testing.T) {
	t.Parallel()
	mk := plexustest.NeedProgram(t, "make", "make")
	dir := root(t)
	describe := exec.Command("git", "describe", "--always", "--dirty")
	describe.Dir = dir
	want, err := describe.Output()
	if err != nil {
		t.Fatalf("git describe (the test runs in a git checkout): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "plexus")
	build := exec.Command(mk, "--no-print-directory", "build", "BIN="+bin)
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-version").CombinedOutput()
	if v := strings.TrimSpace(string(want)); err != nil || !strings.Contains(string(out), v) {
		t.Errorf("plexus -version = %q, %v; want it to name %q", out, err, v)
	}
}
