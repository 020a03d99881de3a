package e2e

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDroppedInputIsVisible: a line with an unknown token sent over TCP is
// logged by the node (reason, listener, peer; never the token) and shown
// live, redacted, by `plexus tap`; a non-admin credential cannot tap.
func TestDroppedInputIsVisible(t *testing.T) {
	s := start(t)
	const tok = "t.00000000-0000-4000-8000-00000000dead"

	cmd := exec.Command(binPath, "tap")
	cmd.Env = append(cleanEnv(), "PLEXUS_URL=http://"+s.Addrs.API, "PLEXUS_CRED="+s.AuthKey)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("plexus tap stderr:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	conn := dialTCP(t, s.Addrs.SyslogTCP)
	peer := conn.LocalAddr().String()
	line := "<134>1 2024-05-01T10:00:00Z host " + tok + " web.1 - - a secret line"
	want := regexp.MustCompile(`^\S+ unknown_token tcp ` + regexp.QuoteMeta(peer) + ` ` +
		regexp.QuoteMeta("<134>1 2024-05-01T10:00:00Z host t.… web.1 - - a secret line") + `$`)
	// The tap may not be listening yet: send until it shows the line.
	waitFor(t, 30*time.Second, "plexus tap to show the dropped line", func() (bool, string) {
		write(t, conn, line+"\n")
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("plexus tap ended")
				}
				if strings.Contains(l, tok) {
					t.Fatalf("plexus tap shows the token: %q", l)
				}
				if want.MatchString(l) {
					return true, ""
				}
				t.Fatalf("plexus tap printed %q, want it to match %s", l, want)
			case <-time.After(200 * time.Millisecond):
				return false, "nothing printed"
			}
		}
	})

	// The node's log: one warn line for the reason, with listener and peer.
	var found map[string]any
	waitFor(t, 10*time.Second, "the dropped-input log line", func() (bool, string) {
		for _, l := range strings.Split(s.Output(), "\n") {
			var v map[string]any
			if json.Unmarshal([]byte(l), &v) == nil && v["reason"] == "unknown_token" {
				found = v
				return true, ""
			}
		}
		return false, "no line with reason unknown_token"
	})
	if found["level"] != "warn" || found["listener"] != "tcp" || found["remote_addr"] != peer {
		t.Errorf("log line %v: want level warn, listener tcp, remote_addr %s", found, peer)
	}
	if out := s.Output(); strings.Contains(out, tok) || strings.Contains(out, "a secret line") {
		t.Errorf("the node's log shows the dropped message or its token")
	}

	// A full_api credential is not the admin key.
	out := mustCLI(t, s, "creds", "create", "-name", "ops", "-full-api")
	m := regexp.MustCompile(`export PLEXUS_CRED=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("creds create: %q", out)
	}
	_, errs, code := cli(t, s, []string{"PLEXUS_CRED=" + m[1]}, "tap")
	if code != 1 || !strings.Contains(errs, "401") || !strings.Contains(errs, "admin key") {
		t.Errorf("plexus tap with a full_api credential: exit %d, stderr %q; want exit 1 and a 401 naming the admin key", code, errs)
	}
}
