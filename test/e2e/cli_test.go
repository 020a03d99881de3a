package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cli runs `plexus args…` against s with PLEXUS_URL and PLEXUS_CRED (the
// admin key) set, plus env, in an empty directory (no ./data/auth_key).
func cli(t testing.TB, s *Server, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv()
	if s != nil {
		cmd.Env = append(cmd.Env, "PLEXUS_URL=http://"+s.Addrs.API, "PLEXUS_CRED="+s.AuthKey)
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("plexus %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// mustCLI runs cli and requires exit code 0.
func mustCLI(t testing.TB, s *Server, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, s, nil, args...)
	if code != 0 {
		t.Fatalf("plexus %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func cliMsg(token, proc string, i int) string {
	return fmt.Sprintf("<134>1 2024-05-01T10:00:%02d.000000Z host %s %s - - line %d", i%60, token, proc, i)
}

// TestCLI drives the client the way the docs show it: a channel with a
// token, a drain with its status, the log read back, mistakes explained.
func TestCLI(t *testing.T) {
	s := start(t)

	out := mustCLI(t, s, "channels", "create", "myapp", "-token", "app")
	tok := regexp.MustCompile(`token app\s+(t\.[0-9a-f-]+)`).FindStringSubmatch(out)
	if !strings.Contains(out, "Created channel myapp") || tok == nil {
		t.Fatalf("channels create: %q, want the channel and its token app", out)
	}
	token := tok[1]
	if _, errs, code := cli(t, s, nil, "channels", "create", "myapp"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("second create: exit %d %q, want 1 and 'already exists'", code, errs)
	}
	if out := mustCLI(t, s, "channels", "list"); !regexp.MustCompile(`(?m)^myapp\s+1\s+0$`).MatchString(out) {
		t.Errorf("channels list: %q, want myapp with 1 token, 0 drains", out)
	}
	if out := mustCLI(t, s, "tokens", "add", "myapp", "worker"); !regexp.MustCompile(`Token worker of channel myapp: t\.`).MatchString(out) {
		t.Errorf("tokens add: %q", out)
	}

	sink := sinkListener(t)
	out = mustCLI(t, s, "drains", "add", "myapp", "syslog://"+sink)
	m := regexp.MustCompile(`Added drain (\d+) to channel myapp`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("drains add: %q", out)
	}
	drainID := m[1]
	if out := mustCLI(t, s, "drains", "list", "myapp"); !strings.Contains(out, "LAG") || !regexp.MustCompile(`(?m)^`+drainID+`\s+syslog://`).MatchString(out) {
		t.Errorf("drains list: %q, want a table with drain %s and its lag", out, drainID)
	}
	if out := mustCLI(t, s, "drains", "get", "myapp", drainID); !strings.Contains(out, "Delivered") || !strings.Contains(out, "Lag") {
		t.Errorf("drains get: %q", out)
	}

	var msgs []string
	for i := 1; i <= 6; i++ {
		proc := "web.1"
		if i%2 == 0 {
			proc = "worker.1"
		}
		msgs = append(msgs, cliMsg(token, proc, i))
	}
	s.mustPostLogs(t, token, msgs...)
	want := "2024-05-01T10:00:05.000000Z app[web.1]: line 5\n2024-05-01T10:00:06.000000Z app[worker.1]: line 6\n"
	if out := mustCLI(t, s, "logs", "myapp", "-n", "2"); out != want {
		t.Errorf("logs -n 2:\n%s\nwant:\n%s", out, want)
	}
	if out := mustCLI(t, s, "logs", "-ps", "worker", "myapp", "-n", "1", "-color", "never"); out != "2024-05-01T10:00:06.000000Z app[worker.1]: line 6\n" {
		t.Errorf("logs -ps worker -n 1: %q", out)
	}
	if out := mustCLI(t, s, "logs", "myapp", "-n", "1", "-color", "always"); !strings.HasPrefix(out, "\x1b[") {
		t.Errorf("logs -color always: %q, want the prefix coloured", out)
	}

	if out := mustCLI(t, s, "drains", "rm", "myapp", drainID); !strings.Contains(out, "Removed drain "+drainID) {
		t.Errorf("drains rm: %q", out)
	}
	if out := mustCLI(t, s, "channels", "delete", "myapp"); !strings.Contains(out, "Deleted channel myapp") {
		t.Errorf("channels delete: %q", out)
	}
	if _, errs, code := cli(t, s, nil, "channels", "get", "myapp"); code != 1 || strings.TrimSpace(errs) != `plexus channels get: no such channel "myapp"` {
		t.Errorf("get after delete: exit %d %q", code, errs)
	}
}

// TestCLIMistakes: a typo or a missing setting prints one line with a
// hint, on stderr; help goes to stdout.
func TestCLIMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		code int
		want string // the whole of stderr
	}{
		{[]string{"chanels", "list"}, nil, 2, `plexus: unknown command "chanels"; did you mean "channels"?`},
		{[]string{"channels", "lst"}, nil, 2, `plexus channels: unknown subcommand "lst"; did you mean "list"?`},
		{[]string{"logs", "-num", "5", "app"}, nil, 2, `plexus logs: flag provided but not defined: -num; did you mean "-n"? (see plexus logs -h)`},
		{[]string{"logs", "-sinse", "1h", "app"}, nil, 2, `plexus logs: flag provided but not defined: -sinse; did you mean "-since"? (see plexus logs -h)`},
		{[]string{"tail"}, nil, 2, `plexus tail: missing CHANNEL (usage: plexus tail CHANNEL)`},
		{[]string{"channels", "list"}, nil, 2, `plexus channels list: no credentials: set PLEXUS_CRED=ID:PASS (from 'plexus creds create') or PLEXUS_AUTH_KEY=<admin key>, or pass -cred`},
		{[]string{"channels", "list", "-cred", "x:y"}, []string{"PLEXUS_URL=http://127.0.0.1:1"}, 1, `plexus channels list: cannot reach plexus at http://127.0.0.1:1 (set -url or PLEXUS_URL)`},
		{[]string{"-log-level", "loud"}, nil, 2, `plexus: -log-level "loud": want debug, info, warn or error`},
		{[]string{"-log-format", "xml"}, nil, 2, `plexus: -log-format "xml": want json, console or auto`},
		{[]string{"-max-body", "-1"}, nil, 2, `-max-body: size "-1": must not be negative`},
		{[]string{"-auth-key", "change-me"}, nil, 2, `the admin key (-auth-key, PLEXUS_AUTH_KEY) is weak`},
	} {
		out, errs, code := cli(t, nil, tc.env, tc.args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != tc.code || len(lines) != 1 || !strings.Contains(lines[0], tc.want) || out != "" {
			t.Errorf("plexus %s: exit %d, stdout %q, stderr %q; want exit %d and one line with %q", strings.Join(tc.args, " "), code, out, errs, tc.code, tc.want)
		}
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"tail", "-h"}, {"channels", "-h"}} {
		out, errs, code := cli(t, nil, nil, args...)
		if code != 0 || errs != "" || !strings.Contains(out, "Usage") {
			t.Errorf("plexus %s: exit %d, stderr %q, stdout %q; want the usage on stdout", strings.Join(args, " "), code, errs, out)
		}
	}
	if out, _, code := cli(t, nil, nil, "-version"); code != 0 || !regexp.MustCompile(`^plexus \S+ \(.+, go1\.`).MatchString(out) {
		t.Errorf("plexus -version: exit %d %q", code, out)
	}
}

// TestCLITailSurvivesRestart: plexus tail follows a channel; the server
// restarts (same address); the tail reconnects by itself and prints every
// message exactly once, in order, those sent while it was away included.
func TestCLITailSurvivesRestart(t *testing.T) {
	s := start(t, "-api-addr", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	out := mustCLI(t, s, "channels", "create", "tailme", "-token", "app")
	tok := regexp.MustCompile(`token app\s+(t\.[0-9a-f-]+)`).FindStringSubmatch(out)
	if tok == nil {
		t.Fatalf("channels create: %q", out)
	}
	token := tok[1]

	cmd := exec.Command(binPath, "tail", "tailme", "-n", "0")
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
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("plexus tail stderr:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := 1
	expect := func(upto int) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for ; next <= upto; next++ {
			want := fmt.Sprintf("app[web.1]: line %d", next)
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("tail ended before %q", want)
				}
				if !strings.HasSuffix(l, want) {
					t.Fatalf("tail printed %q, want the line ending %q (no gap, no repeat)", l, want)
				}
			case <-deadline:
				t.Fatalf("tail did not print %q within 30s", want)
			}
		}
	}
	post := func(from, to int) {
		t.Helper()
		var msgs []string
		for i := from; i <= to; i++ {
			msgs = append(msgs, cliMsg(token, "web.1", i))
		}
		s.mustPostLogs(t, token, msgs...)
	}
	// Wait until the tail's stream is open: a message posted before could
	// be history (not shown with -n 0).
	waitFor(t, 20*time.Second, "the tail session to stream", func() (bool, string) {
		r := do(t, "GET", "http://"+s.Addrs.API+"/metrics", "", nil)
		return bytes.Contains(r.Body, []byte("plexus_tail_sessions 1")), "no tail session yet"
	})
	post(1, 5)
	expect(5)

	s.Restart()
	post(6, 10) // possibly before the tail is back: it must resume after line 5
	expect(10)
	post(11, 12)
	expect(12)
	if !strings.Contains(stderr.String(), "reconnecting") || !strings.Contains(stderr.String(), "reconnected") {
		t.Errorf("tail stderr %q: want it to say it reconnects and did", stderr.String())
	}

	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("tail after SIGINT: %v, want exit 0", waitErr)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("tail did not exit on SIGINT")
	}
}

// TestTLSListeners: with -api-tls-cert/-key and -logs-tls-cert/-key a
// Logplex client posts over HTTPS and the CLI reads the log back over
// HTTPS trusting the certificate with -ca.
func TestTLSListeners(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSignedCert(t, dir, "127.0.0.1")
	s := start(t, "-api-tls-cert", cert, "-api-tls-key", key, "-logs-tls-cert", cert, "-logs-tls-key", key)
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	env := []string{"PLEXUS_URL=https://" + s.Addrs.API, "PLEXUS_CA=" + cert}
	out, errs, code := cli(t, nil, append(env, "PLEXUS_CRED="+s.AuthKey), "channels", "create", "secure", "-token", "app")
	tok := regexp.MustCompile(`token app\s+(t\.[0-9a-f-]+)`).FindStringSubmatch(out)
	if code != 0 || tok == nil {
		t.Fatalf("channels create over HTTPS: exit %d %q %q", code, out, errs)
	}
	body := frame(cliMsg(tok[1], "web.1", 1))
	req, _ := http.NewRequest("POST", "https://"+s.Addrs.Logs+"/logs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/logplex-1")
	req.Header.Set("Logplex-Msg-Count", "1")
	req.SetBasicAuth("token", tok[1])
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST /logs over HTTPS: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /logs over HTTPS: %s, want 204", resp.Status)
	}
	// Plain HTTP is not served on the TLS listener.
	if r, err := httpClient.Post("http://"+s.Addrs.Logs+"/logs", "application/logplex-1", strings.NewReader(body)); err == nil {
		r.Body.Close()
		if r.StatusCode == http.StatusNoContent {
			t.Errorf("plain HTTP POST to the TLS log listener was accepted")
		}
	}
	out, errs, code = cli(t, nil, append(env, "PLEXUS_CRED="+s.AuthKey), "logs", "secure")
	if code != 0 || out != "2024-05-01T10:00:01.000000Z app[web.1]: line 1\n" {
		t.Errorf("logs over HTTPS: exit %d %q %q", code, out, errs)
	}
	// Without the CA the client refuses the self-signed certificate.
	if _, errs, code := cli(t, nil, []string{"PLEXUS_URL=https://" + s.Addrs.API, "PLEXUS_CRED=" + s.AuthKey}, "channels", "list"); code != 1 || !strings.Contains(errs, "certificate") {
		t.Errorf("channels list without -ca: exit %d %q, want a certificate error", code, errs)
	}
}
