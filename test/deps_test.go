// Package test holds repository-wide checks; the end-to-end tests are in
// test/e2e.
package test

import (
	"bufio"
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/plexus-router/plexus"

// allowedDeps lists, per unit, the other units of the module its packages
// may import (directly or not). A unit is a top-level folder, except that
// the packages under channels/ are units of their own: the domain (channels)
// imports nothing of ours, the shared registry only the domain, and the two
// backends (channels/embedded, redis) never know each other. The adapters
// import the domain, and only cmd wires everything. Test-only imports (go
// list -deps ignores them) are not restricted. Keep this table and the one
// in docs/architecture.md in agreement.
var allowedDeps = map[string][]string{
	"channels":           {},
	"channels/registry":  {"channels"},
	"channels/embedded":  {"channels", "channels/registry"},
	"channels/logtest":   {"channels"},
	"channels/storetest": {"channels"},
	"channels/stats":     {},
	"syslog":             {},
	"router":             {"channels", "channels/stats", "syslog"},
	"drains":             {"channels", "channels/stats", "syslog"},
	"api":                {"channels", "channels/stats", "syslog", "router"},
	"redis":              {"channels", "channels/registry"},
	"test":               {"channels", "channels/registry", "channels/embedded"}, // test helpers (e.g. test/redistest)
}

// TestDependencyRule holds the architecture's import rule with go list.
func TestDependencyRule(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"/...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, deps := fields[0], fields[1:]
		top := unit(pkg)
		if top == "cmd" || top == "" {
			continue // cmd may import everything; the module root has no package
		}
		allowed, ok := allowedDeps[top]
		if !ok {
			t.Errorf("package %s is in a top-level folder %q that the dependency rule does not know; add it to allowedDeps", pkg, top)
			continue
		}
		checked++
		var bad []string
		for _, d := range deps {
			dtop := unit(d)
			if dtop == "" || dtop == top || contains(allowed, dtop) {
				continue
			}
			bad = append(bad, d)
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			t.Errorf("%s imports %s; %s/ may import only %v", pkg, strings.Join(bad, ", "), top, allowed)
		}
	}
	if checked == 0 {
		t.Fatalf("no package checked; go list printed:\n%s", out)
	}
	// Nothing outside cmd may import a cmd package.
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || topFolder(fields[0]) == "cmd" {
			continue
		}
		for _, d := range fields[1:] {
			if topFolder(d) == "cmd" {
				t.Errorf("%s imports %s: only cmd wires packages together", fields[0], d)
			}
		}
	}
}

// unit is the dependency unit of a module package: its top-level folder,
// or channels/<name> for the packages under channels ("channels/embedded"
// for ".../channels/embedded"), or "" for packages outside the module.
func unit(pkg string) string {
	top := topFolder(pkg)
	if top != "channels" {
		return top
	}
	rest := strings.TrimPrefix(pkg, module+"/channels")
	if rest == "" {
		return "channels"
	}
	sub, _, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	return "channels/" + sub
}

// topFolder is the first path element of a module package ("channels" for
// ".../channels/logtest"), or "" for packages outside the module.
func topFolder(pkg string) string {
	if pkg == module {
		return ""
	}
	rest, ok := strings.CutPrefix(pkg, module+"/")
	if !ok {
		return ""
	}
	top, _, _ := strings.Cut(rest, "/")
	return top
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
