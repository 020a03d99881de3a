package plexustest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSplitFrames(t *testing.T) {
	got, err := SplitFrames([]byte("5 hello3 abc10 with space"))
	if want := []string{"hello", "abc", "with space"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("SplitFrames = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"hello", "5 hell", "0 ", "-1 x", "123456789 x"} {
		if _, err := SplitFrames([]byte(bad)); err == nil {
			t.Errorf("SplitFrames(%q) accepted", bad)
		}
	}
}

func TestModuleRoot(t *testing.T) {
	if _, err := ModuleRoot(); err != nil {
		t.Fatal(err)
	}
}

func TestLookProgram(t *testing.T) {
	if LookProgram("sh") == "" {
		t.Errorf(`LookProgram("sh") = "", want a path`)
	}
	if p := LookProgram("plexus-no-such-program"); p != "" {
		t.Errorf("LookProgram of a missing program = %q, want \"\"", p)
	}
}

// endRecorder records how Missing ends a test.
type endRecorder struct {
	testing.TB
	fatal, skip string
}

func (r *endRecorder) Helper()                        {}
func (r *endRecorder) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *endRecorder) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

// TestMissing: a missing program fails the test under CI=true and skips it
// otherwise, naming the program and its package either way.
func TestMissing(t *testing.T) {
	t.Setenv("CI", "true")
	r := &endRecorder{TB: t}
	Missing(r, "example-program", "example-pkg")
	if r.skip != "" || !strings.Contains(r.fatal, "CI=true") || !strings.Contains(r.fatal, "example-program") || !strings.Contains(r.fatal, "example-pkg") {
		t.Errorf("under CI=true: Fatalf(%q), Skipf(%q); want a failure naming the program and its package", r.fatal, r.skip)
	}
	t.Setenv("CI", "")
	r = &endRecorder{TB: t}
	Missing(r, "example-program", "example-pkg")
	if r.fatal != "" || !strings.Contains(r.skip, "NOT RUN") || !strings.Contains(r.skip, "example-pkg") {
		t.Errorf("without CI: Fatalf(%q), Skipf(%q); want a skip that says the test did not run", r.fatal, r.skip)
	}
}
