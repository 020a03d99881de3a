package cluster

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// prepareChannel creates a channel with a drain to recv at path through
// node 1, waits until every node knows both, and until the drain delivers
// (a warm-up message reaches the receiver): a drain without a stored
// position starts at the end of the log, so numbered traffic must come
// after this.
func prepareChannel(t *testing.T, c *Cluster, recv *receiver, name, path string) (Channel, Drain) {
	t.Helper()
	n1 := c.Nodes[0]
	ch := n1.createChannel(t, name)
	d := n1.createDrain(t, ch.ID, recv.URL(path))
	for _, n := range c.Nodes {
		if n.killed {
			continue
		}
		waitFor(t, 5*time.Second, n.ID+" to list the drain", func() (bool, string) {
			r, err := n.try("GET", "/v3/channels/"+ch.ID, nil)
			if err != nil {
				return false, err.Error()
			}
			return r.Status == http.StatusOK && strings.Contains(string(r.Body), d.Token), r.String()
		})
	}
	warm := 0
	waitFor(t, 20*time.Second, "the drain to deliver a warm-up message", func() (bool, string) {
		reqs, bad := recv.requests(path)
		for _, q := range reqs {
			for _, f := range q.Frames {
				if s, _, ok := parseMsg(f); ok && s == "warm" {
					return true, ""
				}
			}
		}
		if warm == 0 || warm%25 == 0 { // one every half second
			r, err := do("POST", "http://"+n1.Addrs.Logs+"/logs", tokenAuth(ch.Token), frame(message(ch.Token, "warm", warm+1)),
				"Content-Type", "application/logplex-1", "Logplex-Msg-Count", "1")
			if err != nil || r.Status != http.StatusNoContent {
				return false, fmt.Sprintf("warm-up POST: %v %s", err, r)
			}
		}
		warm++
		return false, fmt.Sprintf("%d requests, bad %q", len(reqs), bad)
	})
	return ch, d
}

// startSenders starts, for every live node not in skip, one TCP syslog
// sender and one HTTP sender, each writing quota messages (0: until
// stopped), batch at a time with pause between batches.
func startSenders(t *testing.T, c *Cluster, token string, quota, batch int, pause time.Duration, skip ...string) []*sender {
	t.Helper()
	var out []*sender
	for i, n := range c.Nodes {
		if n.killed || containsAll(skip, []string{n.ID}) {
			continue
		}
		out = append(out,
			startTCPSender(t, fmt.Sprintf("tcp%d", i+1), n.Addrs.SyslogTCP, token, quota, batch, pause),
			startHTTPSender(t, fmt.Sprintf("http%d", i+1), n.Addrs.Logs, token, quota, 10, pause))
	}
	return out
}

// waitSent waits until every sender has had n more messages accepted
// than when it is called; a sender that fails ends the test.
func waitSent(t *testing.T, senders []*sender, n int, timeout time.Duration) {
	t.Helper()
	base := make([]int64, len(senders))
	for i, s := range senders {
		base[i] = s.sent.Load()
	}
	waitFor(t, timeout, fmt.Sprintf("%d more messages accepted from each sender", n), func() (bool, string) {
		var state []string
		done := true
		for i, s := range senders {
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			more := s.sent.Load() - base[i]
			done = done && more >= int64(n)
			state = append(state, fmt.Sprintf("%s +%d", s.Name, more))
		}
		return done, strings.Join(state, ", ")
	})
}

// wantAll is every message the senders sent (after they stopped or finished).
func wantAll(t *testing.T, senders []*sender) *want {
	t.Helper()
	w := newWant()
	for _, s := range senders {
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		w.last[s.Name] = int(s.sent.Load())
	}
	return w
}

// checkTail waits until the tail holds every wanted message, then checks
// that every event is a message (no notice), offsets go up by exactly one,
// and every wanted message is there once, each sender's in order. It
// returns the messages in offset order.
func checkTail(t *testing.T, tl *tail, w *want, timeout time.Duration) []string {
	t.Helper()
	var events []Event
	var problems []string
	deadline := time.Now().Add(timeout)
	for {
		var err error
		events, err = tl.Events()
		var data []string
		for _, e := range events {
			if e.HasID {
				data = append(data, e.Data)
			}
		}
		problems, _ = w.check(data)
		if len(problems) == 0 {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("tail after %v (stream end: %v), %d events: %s", timeout, err, len(events), strings.Join(problems, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var msgs []string
	var prev uint64
	for i, e := range events {
		if !e.HasID {
			t.Errorf("tail: notice %q (event %d): nothing was lost", e.Data, i)
			continue
		}
		if prev != 0 && e.ID != prev+1 {
			t.Errorf("tail: event %d has offset %d after %d", i, e.ID, prev)
		}
		prev = e.ID
		if s, _, ok := parseMsg(e.Data); ok && w.last[s] > 0 {
			msgs = append(msgs, e.Data)
		}
	}
	return msgs
}

// keys turns messages into "sender n" for comparing orders.
func keys(msgs []string) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if s, n, ok := parseMsg(m); ok {
			out = append(out, fmt.Sprintf("%s %d", s, n))
		}
	}
	return out
}

// TestAllNodesOneDrainOneTail: six senders (TCP syslog and HTTP POST
// /logs to each of the three nodes) write numbered messages concurrently;
// one SSE tail on node 2 and one HTTP drain get every message exactly
// once, in per-channel offset order.
func TestAllNodesOneDrainOneTail(t *testing.T) {
	recv := startReceiver(t)
	c := startCluster(t, 3, 2)
	ch, d := prepareChannel(t, c, recv, "everywhere", "/all")
	tl := c.Nodes[1].openTail(t, ch.ID, 1, false)

	const quota = 600
	senders := startSenders(t, c, ch.Token, quota, 10, 2*time.Millisecond)
	for _, s := range senders {
		s.Wait(t, 60*time.Second)
	}
	w := wantAll(t, senders)
	t.Logf("%d messages from %d senders", w.total(), len(senders))

	var tailOrder []string
	t.Run("tail", func(t *testing.T) {
		tailOrder = keys(checkTail(t, tl, w, 20*time.Second))
	})
	t.Run("drain", func(t *testing.T) {
		c.waitRegistry(t)
		owner := c.waitSingleOwner(t, ch.ID, d.ID, 5*time.Second)
		frames, resent, problems := recv.waitComplete(t, "/all", w, 20*time.Second)
		if len(problems) > 0 {
			t.Fatalf("drain delivered by %s (%d re-sent batches): %s", owner, resent, strings.Join(first(problems, 20), "; "))
		}
		if tailOrder == nil {
			return
		}
		var got []string
		for _, k := range keys(frames) {
			if s, _, _ := strings.Cut(k, " "); w.last[s] > 0 {
				got = append(got, k)
			}
		}
		for i := range min(len(got), len(tailOrder)) {
			if got[i] != tailOrder[i] {
				t.Fatalf("drain order differs from the tail's (offset order) at message %d: drain %q, tail %q", i, got[i], tailOrder[i])
			}
		}
	})
}
