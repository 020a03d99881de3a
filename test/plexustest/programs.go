package plexustest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// LookProgram finds an external program in PATH, then in the sbin
// directories (rsyslogd lives in /usr/sbin, which a non-root PATH may
// lack). It returns "" when the program is not installed.
func LookProgram(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if filepath.Base(name) != name {
		return "" // a path: LookPath looked at it already
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// NeedProgram returns the path of an external program the test runs;
// pkg is the Debian package scripts/test-deps.sh installs it from. When
// the program is missing, Missing ends the test.
func NeedProgram(t testing.TB, name, pkg string) string {
	t.Helper()
	p := LookProgram(name)
	if p == "" {
		Missing(t, name, pkg)
	}
	return p
}

// Missing ends a test that needs something scripts/test-deps.sh installs
// (a program, an rsyslog module) and did not find it: what names it, pkg
// its Debian package.
//
// This is the only reason a test of this module may skip, and the skip
// says loudly that the test did not run and why (go test -v shows it;
// without -v go test reports no skip at all). Under CI=true, where
// scripts/test-deps.sh has run, the test fails instead.
func Missing(t testing.TB, what, pkg string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not installed (Debian package %s): scripts/test-deps.sh could not install it (run it as root)", what, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", msg)
		return
	}
	t.Skipf("NOT RUN: %s; under CI=true this fails", msg)
}
