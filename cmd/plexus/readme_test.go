package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table from plexus -h")

// configTable renders plexus -h's flags as the README's markdown table.
func configTable(t *testing.T) string {
	t.Helper()
	var help bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, env(nil), &help); err == nil {
		t.Fatal("-h: no ErrHelp")
	}
	head := regexp.MustCompile(`^  -(\S+) \[([^\]]*)\](?: \(default "(.*)"\))?$`)
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	lines := strings.Split(help.String(), "\n")
	n := 0
	for i := 0; i < len(lines)-1; i++ {
		m := head.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		envs := strings.Split(m[2], ", ")
		for j := range envs {
			envs[j] = "`" + envs[j] + "`"
		}
		def := ""
		if m[3] != "" {
			def = "`" + m[3] + "`"
		}
		usage := strings.ReplaceAll(strings.TrimSpace(lines[i+1]), "|", `\|`)
		b.WriteString("| `-" + m[1] + "` | " + strings.Join(envs, ", ") + " | " + def + " | " + usage + " |\n")
		n++
	}
	if n < 30 {
		t.Fatalf("parsed %d flags from plexus -h; its format changed?\n%s", n, help.String())
	}
	return b.String()
}

// TestReadmeConfigTable keeps the README's configuration table equal to
// what plexus -h prints (go test ./cmd/plexus -run ReadmeConfig -update
// rewrites it).
func TestReadmeConfigTable(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "| flag | environment | default | meaning |")
	if start < 0 {
		t.Fatal("README has no configuration table")
	}
	end := strings.Index(readme[start:], "\n\n")
	if end < 0 {
		t.Fatal("README's configuration table does not end")
	}
	end += start + 1
	want := configTable(t)
	if readme[start:end] == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:start]+want+readme[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README's configuration table differs from plexus -h; run go test ./cmd/plexus -run ReadmeConfigTable -update")
}
