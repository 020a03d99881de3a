// Package plexustest holds what the end-to-end suites (test/e2e,
// test/cluster) share: finding the module to build the binary from, a
// decoder of the octet-counted frames drain receivers get, and the one rule
// for a missing external program (NeedProgram, Missing), which test/redistest
// follows too. The decoder is written from RFC 6587 and Logplex's drain
// format, independently of the encoders in the product, so a test can catch
// an encoder bug.
package plexustest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ModuleRoot finds the directory holding go.mod above the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above %s", dir)
		}
		dir = parent
	}
}

// SplitFrames decodes a body of octet-counted frames "LEN SP MSG" with
// nothing between them, as HTTP drains and POST /logs carry them.
func SplitFrames(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		sp := strings.IndexByte(string(b[:min(len(b), 8)]), ' ')
		if sp <= 0 {
			return nil, fmt.Errorf("no length prefix")
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n <= 0 || sp+1+n > len(b) {
			return nil, fmt.Errorf("bad frame length %q", b[:sp])
		}
		out = append(out, string(b[sp+1:sp+1+n]))
		b = b[sp+1+n:]
	}
	return out, nil
}
