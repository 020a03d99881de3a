package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/redistest"
)

// redisPrefix names the tests that start() runs on the Redis backend.
const redisPrefix = "TestRedis/"

// redisBackendReady starts the binary once with -redis-url and reports
// whether it comes up (false with the reason when it exits), so that a
// broken Redis backend fails TestRedis once rather than in every subtest.
func redisBackendReady(t *testing.T, url string) (bool, string) {
	t.Helper()
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addrs.json")
	cmd := exec.Command(binPath, "-redis-url", url, "-auth-key", "probe-key-0123456789", "-data-dir", dir, "-addr-file", addrFile,
		"-api-addr", "127.0.0.1:0", "-logs-addr", "127.0.0.1:0", "-syslog-addr", "127.0.0.1:0", "-syslog-udp-addr", "127.0.0.1:0")
	cmd.Env = cleanEnv()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(startTimeout)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			cmd.Process.Kill()
			<-done
			return true, ""
		}
		select {
		case err := <-done:
			return false, fmt.Sprintf("%v: %s", err, strings.TrimSpace(tailOf(out.String(), 500)))
		case <-deadline:
			cmd.Process.Kill()
			<-done
			t.Fatalf("plexus -redis-url did not start within %v: %s", startTimeout, tailOf(out.String(), 2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRedis runs the end-to-end tests again on the Redis backend (one
// redis-server per test).
func TestRedis(t *testing.T) {
	rs := redistest.StartTCP(t)
	if ok, why := redisBackendReady(t, rs.URL()); !ok {
		t.Fatalf("plexus -redis-url does not start: %s", why)
	}
	for _, c := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"ReadmeWalkthrough", TestReadmeWalkthrough},
		{"Credentials", TestCredentials},
		{"HTTPInput", TestHTTPInput},
		{"V3API", TestV3API},
		{"SyslogTCP", TestSyslogTCP},
		{"SyslogUDP", TestSyslogUDP},
		{"ConcurrentWriters", TestConcurrentWriters},
		{"SessionFilters", TestSessionFilters},
		{"HistoryBound", TestHistoryBound},
		{"TailGapless", TestTailGapless},
		{"SSEResume", TestSSEResume},
		{"SlowTailL11", TestSlowTailL11},
		{"RestartKeepsState", TestRestartKeepsState},
		{"ShutdownWithOpenTail", TestShutdownWithOpenTail},
		{"RsyslogDrainReceiver", TestRsyslogDrainReceiver},
		{"HTTPDrain", TestHTTPDrain},
		{"SyslogDrain", TestSyslogDrain},
		{"DrainOutage", TestDrainOutage},
	} {
		t.Run(c.name, c.f)
	}
}

// TestRedisCluster runs two nodes on one Redis: configuration made on one
// is served by the other, messages ingested on one are in the history and
// the live tail served by the other, with no gap.
func TestRedisCluster(t *testing.T) {
	rs := redistest.StartTCP(t)
	key := randomKey()
	a := start(t, "-redis-url", rs.URL(), "-auth-key", key, "-history", "20000")
	b := start(t, "-redis-url", rs.URL(), "-auth-key", key, "-history", "20000")

	ch := a.createChannel(t, "cluster", "app")
	waitFor(t, 10*time.Second, "node B to know the channel", func() (bool, string) {
		r := b.API(t, "GET", "/v2/channels/"+ch.ID, nil)
		return r.Status == http.StatusOK, r.String()
	})
	c := a.createCred(t, "cluster", true, true)
	waitFor(t, 10*time.Second, "node B to know the credential", func() (bool, string) {
		r := do(t, "GET", "http://"+b.Addrs.API+"/healthcheck", credAuth(c.ID, c.Pass), nil)
		return r.Status == http.StatusOK, r.String()
	})
	// Node B routes the token created on node A.
	waitFor(t, 10*time.Second, "node B to accept the token", func() (bool, string) {
		r := b.postLogs(t, tokenAuth(ch.Tokens["app"]), "<134>1 2024-01-01T00:00:00.000000Z host "+ch.Tokens["app"]+" web.1 - - via b")
		return r.Status == http.StatusNoContent, r.String()
	})
	// Node A serves it at once: while Redis is healthy, B answers 204 only
	// once the message is written to Redis.
	if got, want := a.history(t, ch.ID, 10), "2024-01-01T00:00:00.000000Z app[web.1]: via b\n"; got != want {
		t.Errorf("node A history right after node B's 204: %q, want %q", got, want)
	}

	// A writer on node A, a tail on node B.
	w := startSeqWriter(t, a.Addrs.SyslogTCP, ch.Tokens["app"])
	b.waitHistory(t, ch.ID, 200, 20*time.Second)
	lr := newLineReader(openStream(t, b.newSession(t, map[string]any{"channel_id": ch.ID, "num": "50", "tail": true})))
	defer lr.Close()
	atOpen := w.sent.Load()
	var prev, last int64
	for count := 0; ; count++ {
		line, ok := lr.next(t, 15*time.Second)
		if !ok {
			t.Fatalf("tail on node B ended after %d lines", count)
		}
		if count == 0 && strings.HasSuffix(line, "via b") {
			continue
		}
		n := seqOf(t, line)
		if prev != 0 && n != prev+1 {
			t.Fatalf("tail on node B: seq %d after %d", n, prev)
		}
		prev = n
		if last == 0 && n > atOpen+2000 {
			last = w.Stop(t)
		}
		if last != 0 && n == last {
			break
		}
	}
	// Both nodes serve the same history.
	if ha, hb := a.history(t, ch.ID, 1500), b.history(t, ch.ID, 1500); ha != hb {
		t.Errorf("nodes serve different histories (%d and %d bytes)", len(ha), len(hb))
	}
}
