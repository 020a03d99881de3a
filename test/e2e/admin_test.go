package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGeneratedAuthKey starts without an admin key: one is generated,
// printed once, stored in the data directory, kept across a restart, and
// used by `plexus creds` from the same data directory.
func TestGeneratedAuthKey(t *testing.T) {
	s := start(t, "-auth-key", "")
	b, err := os.ReadFile(filepath.Join(s.DataDir, "auth_key"))
	if err != nil {
		t.Fatalf("no generated key in the data dir: %v", err)
	}
	key := strings.TrimSpace(string(b))
	if len(key) < 16 {
		t.Fatalf("generated key %q is too short", key)
	}
	if !strings.Contains(s.Output(), key) {
		t.Errorf("the generated key is not printed at startup")
	}
	s.AuthKey = key
	mustStatus(t, "healthcheck with the generated key", s.API(t, "GET", "/healthcheck", nil), http.StatusOK)

	s.Restart()
	mustStatus(t, "healthcheck with the generated key after a restart", s.API(t, "GET", "/healthcheck", nil), http.StatusOK)
	if _, second, _ := strings.Cut(s.Output(), "=== run 2:"); strings.Contains(second, key) {
		t.Errorf("the key is printed again after the restart, want only once at generation")
	}

	// plexus creds, reading the key from the data dir.
	creds := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binPath, append([]string{"creds"}, args...)...)
		cmd.Env = append(cleanEnv(), "PLEXUS_API_URL=http://"+s.Addrs.API, "PLEXUS_DATA_DIR="+s.DataDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("plexus creds %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := creds("create", "-name", "cli", "-full-api")
	m := regexp.MustCompile(`"id":\s*"([0-9A-F]{32})"[\s\S]*"pass":\s*"([0-9A-F]{64})"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("plexus creds create printed no id and pass:\n%s", out)
	}
	id, pass := m[1], m[2]
	r := do(t, "GET", "http://"+s.Addrs.API+"/healthcheck", credAuth(id, pass), nil)
	mustStatus(t, "healthcheck with the CLI-created credential", r, http.StatusOK)
	if out := creds("list"); !strings.Contains(out, id) || !strings.Contains(out, "cli") {
		t.Errorf("plexus creds list does not show %s:\n%s", id, out)
	}
	creds("revoke", id)
	r = do(t, "GET", "http://"+s.Addrs.API+"/healthcheck", credAuth(id, pass), nil)
	mustStatus(t, "healthcheck with the revoked credential", r, http.StatusUnauthorized)
}
