package plexustest

import (
	"reflect"
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
