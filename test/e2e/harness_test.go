package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/redistest"
)

// startTimeout bounds how long a server may take to bind its listeners.
const startTimeout = 20 * time.Second

// stopTimeout bounds a graceful shutdown after SIGTERM.
const stopTimeout = 20 * time.Second

// Addrs is the JSON the binary writes to -addr-file once it listens.
type Addrs struct {
	API       string `json:"api"`
	Logs      string `json:"logs"`
	SyslogTCP string `json:"syslog_tcp"`
	SyslogUDP string `json:"syslog_udp"`
	SyslogTLS string `json:"syslog_tls"`
}

// Server is one running plexus process.
type Server struct {
	t       testing.TB
	DataDir string
	AuthKey string
	Addrs   Addrs
	flags   []string // extra flags, reused by Restart
	env     []string // extra environment, reused by Restart

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process exited
	waitErr error
	out     *lockedBuffer
	runs    int

	fullOutput bool // log all output on failure (goroutine dumps)
}

// lockedBuffer collects the process output for failure reports.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs plexus on 127.0.0.1 with kernel-chosen ports, a temporary data
// directory and a random admin key (unless extra has -auth-key). extra flags
// are appended (and kept for Restart). The process is killed at the end of
// the test if still running.
func start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return startEnv(t, nil, extra...)
}

// startEnv is start with extra environment variables (NAME=value).
func startEnv(t testing.TB, env []string, extra ...string) *Server {
	t.Helper()
	if strings.HasPrefix(t.Name(), redisPrefix) && !containsFlag(extra, "-redis-url") {
		// Tests run under TestRedis use the Redis backend, each with its
		// own redis-server.
		extra = append([]string{"-redis-url", redistest.StartTCP(t).URL()}, extra...)
	}
	s := &Server{
		t:       t,
		DataDir: t.TempDir(),
		AuthKey: randomKey(),
		flags:   extra,
		env:     env,
		out:     &lockedBuffer{},
	}
	for i, f := range extra {
		if f == "-auth-key" && i+1 < len(extra) {
			s.AuthKey = extra[i+1]
		}
	}
	if k := envKey(env); k != "" && !containsFlag(extra, "-auth-key") {
		s.AuthKey = k
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			out := s.out.String()
			if !s.fullOutput {
				out = tailOf(out, 8000)
			}
			t.Logf("plexus output:\n%s", out)
		}
	})
	s.launch()
	return s
}

func randomKey() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (s *Server) launch() {
	t := s.t
	t.Helper()
	s.runs++
	addrFile := filepath.Join(t.TempDir(), "addrs.json")
	args := []string{
		"-api-addr", "127.0.0.1:0",
		"-logs-addr", "127.0.0.1:0",
		"-syslog-addr", "127.0.0.1:0",
		"-syslog-udp-addr", "127.0.0.1:0",
		"-data-dir", s.DataDir,
		"-addr-file", addrFile,
	}
	if !containsFlag(s.flags, "-auth-key") && envKey(s.env) == "" {
		args = append(args, "-auth-key", s.AuthKey)
	}
	if containsFlag(s.flags, "-tls-cert") && !containsFlag(s.flags, "-syslog-tls-addr") {
		args = append(args, "-syslog-tls-addr", "127.0.0.1:0")
	}
	args = append(args, s.flags...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(cleanEnv(), s.env...)
	fmt.Fprintf(s.out, "=== run %d: plexus %s\n", s.runs, strings.Join(args, " "))
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start plexus: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func(done chan struct{}) {
		s.waitErr = cmd.Wait()
		close(done)
	}(s.done)

	deadline := time.Now().Add(startTimeout)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(b) > 0 {
			var a Addrs
			if json.Unmarshal(b, &a) == nil && a.API != "" {
				s.Addrs = a
				s.waitHealthy(deadline)
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("plexus exited before listening (%v); its output follows", s.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("plexus did not write %s within %v; its output follows", addrFile, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// envKey returns the admin key set in env (PLEXUS_AUTH_KEY first, then
// Logplex's LOGPLEX_AUTH_KEY), or "".
func envKey(env []string) string {
	for _, name := range []string{"PLEXUS_AUTH_KEY=", "LOGPLEX_AUTH_KEY="} {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, name); ok {
				return v
			}
		}
	}
	return ""
}

// waitHealthy waits until GET /v3/healthcheck answers 200 (it answers 503
// while the node is still loading its configuration).
func (s *Server) waitHealthy(deadline time.Time) {
	t := s.t
	t.Helper()
	client, scheme := httpClient, "http://"
	if containsFlag(s.flags, "-api-tls-cert") {
		// Only to see it serve: tests check the certificate themselves.
		client = &http.Client{Timeout: httpClient.Timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		scheme = "https://"
	}
	for {
		resp, err := client.Get(scheme + s.Addrs.API + "/v3/healthcheck")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v3/healthcheck did not answer 200 within %v (last: %v %v); output follows", startTimeout, resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cleanEnv is the test's environment without PLEXUS_* and LOGPLEX_*
// variables, so a developer's settings do not leak into the server.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PLEXUS_") || strings.HasPrefix(kv, "LOGPLEX_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func containsFlag(flags []string, name string) bool {
	for _, f := range flags {
		if f == name || strings.HasPrefix(f, name+"=") {
			return true
		}
	}
	return false
}

// Stop sends SIGTERM and requires a clean exit (code 0) within stopTimeout.
func (s *Server) Stop() {
	t := s.t
	t.Helper()
	if s.cmd == nil {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		// SIGQUIT makes the Go runtime print every goroutine's stack: the
		// output then shows where shutdown is stuck.
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
		s.kill()
		s.fullOutput = true
		t.Fatalf("plexus did not exit within %v of SIGTERM; its output (with a goroutine dump) follows", stopTimeout)
	}
	if s.waitErr != nil {
		t.Fatalf("plexus exited uncleanly after SIGTERM: %v; its output follows", s.waitErr)
	}
	s.cmd = nil
}

// Restart stops the process gracefully and starts it again on the same data
// directory with the same key and flags (new ports).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.launch()
}

// kill ends the process at once if it still runs (test cleanup).
func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Output is everything the process printed so far.
func (s *Server) Output() string { return s.out.String() }

func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// waitFor polls cond every 20 ms until it returns true or timeout passes.
// cond returns a description of the current state for the failure message.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var state string
	for {
		var ok bool
		ok, state = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
