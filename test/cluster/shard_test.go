package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisCLI runs redis-cli on a unix socket and returns its trimmed output.
func redisCLI(sock string, args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-s", sock}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// shardOf waits until exactly one shard holds keys (the nodes write
// shortly after they accept) and returns its number (1-based): the shard
// of the test's only channel.
func (c *Cluster) shardOf(t testing.TB) int {
	t.Helper()
	var found []int
	waitFor(t, 5*time.Second, "the channel's keys on one shard", func() (bool, string) {
		found = found[:0]
		var state []string
		for i := range c.ShardURLs() {
			sock := filepath.Join(c.Dir, fmt.Sprintf("redis-shard-%d.sock", i+1))
			out, err := redisCLI(sock, "DBSIZE")
			state = append(state, fmt.Sprintf("shard %d: %q %v", i+1, out, err))
			if n, err := strconv.Atoi(out); err == nil && n > 0 {
				found = append(found, i+1)
			}
		}
		return len(found) == 1, strings.Join(state, "; ")
	})
	return found[0]
}

// killShard ends shard k's redis-server with SIGKILL (a crash: its data
// is gone, it had no persistence) and waits until it is gone.
func (c *Cluster) killShard(t testing.TB, k int) {
	t.Helper()
	pidFile := filepath.Join(c.Dir, fmt.Sprintf("redis-shard-%d.pid", k))
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("%s: %q", pidFile, b)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 redis shard %d (pid %d): %v", k, pid, err)
	}
	os.Remove(pidFile)
	waitFor(t, 10*time.Second, fmt.Sprintf("redis shard %d (pid %d) to exit", k, pid), func() (bool, string) {
		return !processAlive(pid), "running"
	})
}

// startShard starts shard k's redis-server again, empty, with the
// arguments deploy/local-cluster.sh uses, and waits until it answers.
func (c *Cluster) startShard(t testing.TB, k int) {
	t.Helper()
	name := fmt.Sprintf("redis-shard-%d", k)
	sock := filepath.Join(c.Dir, name+".sock")
	os.Remove(sock)
	cmd := exec.Command("redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--daemonize", "yes", "--dir", c.Dir,
		"--pidfile", filepath.Join(c.Dir, name+".pid"), "--logfile", filepath.Join(c.Dir, name+".log"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restart %s: %v: %s", name, err, out)
	}
	waitFor(t, 10*time.Second, name+" to answer PING", func() (bool, string) {
		out, err := redisCLI(sock, "PING")
		return err == nil && out == "PONG", fmt.Sprintf("%q %v", out, err)
	})
}

// firstAfter returns the number of the first message the sender offered
// after at (sent+1 when none).
func (s *sender) firstAfter(at time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.offered {
		if o.After(at) {
			return i + 1
		}
	}
	return len(s.offered) + 1
}

// TestShardRestart: while six senders write, the channel's shard Redis is
// killed and started again empty. POST /logs keeps answering (204, or 503
// with Retry-After, resent); health reports degraded meanwhile; every
// message accepted after the crash is readable afterwards, in order, by a
// tail that was open across the restart (which gets an L15 "history
// restarted" notice, not a silent gap) and by a new session.
func TestShardRestart(t *testing.T) {
	c := startCluster(t, 3, 2)
	n1 := c.Nodes[0]
	ch := n1.createChannel(t, "shard-restart")
	for _, n := range c.Nodes {
		waitFor(t, 5*time.Second, n.ID+" to route the token", func() (bool, string) {
			r, err := do("POST", "http://"+n.Addrs.Logs+"/logs", tokenAuth(ch.Token), frame(message(ch.Token, "warm", 1)),
				"Content-Type", "application/logplex-1", "Logplex-Msg-Count", "1")
			if err != nil {
				return false, err.Error()
			}
			return r.Status == http.StatusNoContent, r.String()
		})
	}
	shard := c.shardOf(t)
	tl := c.Nodes[1].openTail(t, ch.ID, 1, true)

	senders := startSenders(t, c, ch.Token, 0, 5, 10*time.Millisecond)
	waitFor(t, 20*time.Second, "300 messages in the tail before the crash", func() (bool, string) {
		ev, err := tl.Events()
		return len(ev) >= 300, fmt.Sprintf("%d events, %v", len(ev), err)
	})

	// Watch health while the shard is away.
	var (
		hmu      sync.Mutex
		degraded []string
	)
	stopHealth := make(chan struct{})
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		for {
			for _, n := range c.Nodes {
				if r, err := n.try("GET", "/v3/healthcheck", nil); err == nil && strings.Contains(string(r.Body), "DEGRADED") {
					hmu.Lock()
					degraded = append(degraded, n.ID+": "+string(r.Body))
					hmu.Unlock()
				}
			}
			select {
			case <-stopHealth:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	stopWatch := sync.OnceFunc(func() { close(stopHealth); <-healthDone })
	t.Cleanup(stopWatch)

	// The id of the last message the tail saw before the crash: an
	// offset of the epoch the crash ends (for the resume check).
	var oldID string
	before, _ := tl.Events()
	for _, e := range before {
		if e.HasID {
			oldID = e.RawID
		}
	}
	if oldID == "" {
		t.Fatalf("the tail holds %d events before the crash but no message id", len(before))
	}

	hmu.Lock()
	degradedBefore := len(degraded)
	hmu.Unlock()
	c.killShard(t, shard)
	killedAt := time.Now()
	// The shard stays away for a second, and until a node has noticed.
	waitFor(t, 20*time.Second, fmt.Sprintf("a node's healthcheck to say DEGRADED while shard %d is away", shard), func() (bool, string) {
		hmu.Lock()
		n := len(degraded) - degradedBefore
		hmu.Unlock()
		return n > 0 && time.Since(killedAt) >= time.Second, fmt.Sprintf("%d degraded answers after %v", n, time.Since(killedAt).Round(time.Millisecond))
	})
	c.startShard(t, shard)
	restartedAt := time.Now()
	// The senders go on until each has had 200 messages accepted after
	// the restart.
	waitSent(t, senders, 200, 30*time.Second)
	for _, s := range senders {
		s.Stop()
	}
	stopWatch()

	w := wantAll(t, senders) // fails on a sender error (an answer other than 204 or 503 + Retry-After)
	retries := 0
	for _, s := range senders {
		w.first[s.Name] = s.firstAfter(killedAt)
		s.mu.Lock()
		retries += s.retries
		s.mu.Unlock()
	}
	hmu.Lock()
	t.Logf("shard %d down for %v; %d messages offered after the crash; %d POSTs answered 503 + Retry-After and resent; %d degraded health answers",
		shard, restartedAt.Sub(killedAt).Round(10*time.Millisecond), w.total(), retries, len(degraded))
	hmu.Unlock()

	t.Run("tail", func(t *testing.T) {
		var events []Event
		var after []string
		deadline := time.Now().Add(20 * time.Second)
		for {
			var err error
			events, err = tl.Events()
			after = after[:0]
			for _, e := range eventsAfterReset(events) {
				if e.HasID {
					after = append(after, e.Data)
				}
			}
			_, _, missing := w.check3(after)
			if missing == 0 {
				break
			}
			if err != nil || time.Now().After(deadline) {
				problems, _ := w.check(after)
				t.Fatalf("tail (stream end %v): %s", err, strings.Join(first(problems, 10), "; "))
			}
			time.Sleep(50 * time.Millisecond)
		}
		resets := 0
		var prev uint64
		for i, e := range events {
			if !e.HasID {
				if !strings.Contains(e.Data, "Error L15") {
					t.Errorf("tail: unexpected notice %q", e.Data)
				}
				resets++
				prev = 0
				continue
			}
			if prev != 0 && e.ID != prev+1 {
				t.Errorf("tail: event %d has offset %d after %d without an L15 notice between", i, e.ID, prev)
			}
			prev = e.ID
		}
		t.Logf("tail: %d events, %d L15 notices", len(events), resets)
		if rc := tl.Reconnects(); len(rc) > 0 {
			// docs/operations.md: tails of channels on a restarting shard
			// "pause and continue".
			t.Errorf("the tail stream ended during the shard outage and was reopened with Last-Event-ID (%s); tails should pause and continue", strings.Join(rc, ", "))
		}
		if problems, _ := w.check(after); len(problems) > 0 {
			t.Errorf("tail after the crash: %s", strings.Join(first(problems, 10), "; "))
		}
	})

	// An SSE client that reconnects now with an id of the old epoch must
	// be told that the history restarted, not resume at that offset of
	// the new epoch.
	t.Run("resume", func(t *testing.T) {
		first := firstEvents(t, tl.url, oldID, 3, 5*time.Second)
		if len(first) == 0 || first[0].HasID || !strings.Contains(first[0].Data, "Error L15") {
			t.Errorf("SSE resume with Last-Event-ID %s (an offset of the lost epoch) starts with %+v, want an L15 notice (a silent gap otherwise)", oldID, first)
		}
	})

	t.Run("history", func(t *testing.T) {
		r := c.Nodes[2].API(t, "POST", "/v3/sessions", map[string]any{"channel_id": ch.ID, "num": "-1"})
		mustStatus(t, "POST /v3/sessions", r, http.StatusCreated)
		rs, err := do("GET", "http://"+c.Nodes[2].Addrs.API+sessionPath(t, r), "", nil)
		if err != nil || rs.Status != http.StatusOK {
			t.Fatalf("GET session: %v %s", err, rs)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSuffix(string(rs.Body), "\n"), "\n") {
			if _, _, ok := parseMsg(l); ok {
				lines = append(lines, l)
			}
		}
		if problems, _ := w.check(lines); len(problems) > 0 {
			t.Errorf("history read after the restart (%d lines): %s", len(lines), strings.Join(first(problems, 10), "; "))
		}
	})
}

// eventsAfterReset returns the events after the last notice (the L15
// "history restarted" line), or all of them when there is none.
func eventsAfterReset(events []Event) []Event {
	for i := len(events) - 1; i >= 0; i-- {
		if !events[i].HasID {
			return events[i+1:]
		}
	}
	return events
}

// firstEvents opens an SSE stream of a session with Last-Event-ID and
// returns its first n events (fewer if none come within timeout).
func firstEvents(t testing.TB, url string, lastID string, n int, timeout time.Duration) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tl := &tail{url: url, ctx: ctx, cancel: cancel, done: make(chan struct{}), lastID: lastID}
	resp, err := tl.get()
	if err != nil {
		t.Fatalf("GET %s with Last-Event-ID %s: %v", url, lastID, err)
	}
	go tl.run(resp)
	defer tl.Close()
	for {
		ev, err := tl.Events()
		if len(ev) >= n || err != nil {
			return ev[:min(n, len(ev))]
		}
		time.Sleep(20 * time.Millisecond)
	}
}
