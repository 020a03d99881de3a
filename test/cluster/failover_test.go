package cluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNodesList: GET /v3/nodes on every node lists the three live nodes;
// after kill -9 of one, the others list two within 10 s.
func TestNodesList(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, 1)
	c.waitRegistry(t)
	waitNodes := func(timeout time.Duration, want []string) time.Duration {
		t.Helper()
		start := time.Now()
		for _, n := range c.Nodes {
			if n.killed {
				continue
			}
			waitFor(t, timeout-time.Since(start), fmt.Sprintf("%s to list exactly %q", n.ID, want), func() (bool, string) {
				ids, err := n.nodes()
				if err != nil {
					return false, err.Error()
				}
				slices.Sort(ids)
				return slices.Equal(ids, want), fmt.Sprintf("%q", ids)
			})
		}
		return time.Since(start)
	}
	waitNodes(5*time.Second, []string{"node-1", "node-2", "node-3"})
	c.Nodes[2].Kill9(t)
	took := waitNodes(10*time.Second, []string{"node-1", "node-2"})
	t.Logf("node-3 left the list %v after kill -9", took.Round(10*time.Millisecond))
}

// TestDrainOwnerKilled: while senders write to the two other nodes, the
// node delivering the drain is killed with SIGKILL; another node takes the
// drain over and the receiver ends up with every message, duplicates only
// as re-sent batches (same Logplex-Frame-Id, same body), within 30 s.
func TestDrainOwnerKilled(t *testing.T) {
	recv := startReceiver(t)
	c := startCluster(t, 3, 2)
	c.waitRegistry(t)
	recv.watchPIDs(func() []int {
		var pids []int
		for _, n := range c.Nodes {
			pids = append(pids, n.PID)
		}
		return pids
	})
	ch, d := prepareChannel(t, c, recv, "failover", "/failover")
	ownerID := c.waitSingleOwner(t, ch.ID, d.ID, 10*time.Second)
	owner := c.Node(ownerID)
	if owner == nil {
		t.Fatalf("drain status names node %q, not one of the cluster's", ownerID)
	}

	senders := startSenders(t, c, ch.Token, 0, 10, 10*time.Millisecond, ownerID)
	waitFor(t, 20*time.Second, "1000 messages delivered before the kill", func() (bool, string) {
		n := recv.count("/failover")
		return n >= 1000, fmt.Sprintf("%d delivered", n)
	})
	// The check below that the killed node sends nothing after the kill
	// needs the receiver to attribute requests to processes.
	if reqs, _ := recv.requests("/failover"); !slices.ContainsFunc(reqs, func(q drainRequest) bool { return q.PID == owner.PID }) {
		t.Fatalf("none of the %d drain requests is attributed to the owner %s (pid %d): the receiver's lookup in /proc failed", len(reqs), ownerID, owner.PID)
	}
	owner.Kill9(t)
	killedAt := time.Now()
	t.Logf("killed %s (pid %d), the drain owner, after %d messages were delivered", ownerID, owner.PID, recv.count("/failover"))
	// The senders keep writing to the other nodes while the drain has no
	// owner: 1000 more messages accepted from each (about two seconds).
	waitSent(t, senders, 1000, 30*time.Second)
	for _, s := range senders {
		s.Stop()
	}
	w := wantAll(t, senders)

	newOwner := c.waitSingleOwner(t, ch.ID, d.ID, time.Until(killedAt.Add(30*time.Second)), ownerID)
	_, resent, problems := recv.waitComplete(t, "/failover", w, time.Until(killedAt.Add(30*time.Second)))
	reqs, _ := recv.requests("/failover")
	var firstAfter time.Time
	for _, q := range reqs {
		if q.At.After(killedAt) {
			if q.PID == owner.PID {
				t.Errorf("request from the killed node's pid %d at %v, after the kill", q.PID, q.At.Sub(killedAt))
			}
			if firstAfter.IsZero() {
				firstAfter = q.At
			}
		}
	}
	t.Logf("%d messages from %d senders; %s took over, first request %v after the kill; %d batches re-sent",
		w.total(), len(senders), newOwner, firstAfter.Sub(killedAt).Round(10*time.Millisecond), resent)
	if len(problems) > 0 {
		t.Fatalf("after killing %s: %s; %s", ownerID, redelivered(reqs, killedAt), strings.Join(problems, "; "))
	}
}
