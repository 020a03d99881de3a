package cluster

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/redistest"
)

// lease is the drain lease TTL: redis.LeasesConfig's default, which
// cmd/plexus does not change.
const lease = 5 * time.Second

// TestCutOffNodeStopsDelivering: a fourth node whose config Redis goes
// through a proxy owns a drain and delivers it; the proxy is cut (the
// node still reaches the shards, so it could go on reading the channel).
// The node must stop delivering by the time its lease expires, before
// another node takes the drain over, and the other node must take it
// over; nothing is lost.
func TestCutOffNodeStopsDelivering(t *testing.T) {
	t.Parallel()
	recv := startReceiver(t)
	c := startCluster(t, 3, 2)
	c.waitRegistry(t)

	proxy := redistest.NewProxyTo(t, "unix", filepath.Join(c.Dir, "redis-config.sock"))
	n4 := c.startNode(t, "node-4", proxy.URL())
	waitFor(t, 10*time.Second, "node-1 to list node-4", func() (bool, string) {
		ids, err := c.Nodes[0].nodes()
		return err == nil && containsAll(ids, []string{"node-4"}), fmt.Sprintf("%q %v", ids, err)
	})
	recv.watchPIDs(func() []int {
		var pids []int
		for _, n := range c.Nodes {
			pids = append(pids, n.PID)
		}
		return pids
	})

	// Create drains until node-4 owns one (owners are spread over the
	// nodes); delete the others.
	n1 := c.Nodes[0]
	ch := n1.createChannel(t, "cut-off")
	var d Drain
	var path string
	for i := 1; ; i++ {
		if i > 40 {
			t.Fatalf("node-4 owns none of 40 drains")
		}
		path = fmt.Sprintf("/cut%d", i)
		d = n1.createDrain(t, ch.ID, recv.URL(path))
		owner := c.waitSingleOwner(t, ch.ID, d.ID, 10*time.Second)
		if owner == "node-4" {
			break
		}
		r := n1.API(t, "DELETE", fmt.Sprintf("/v3/channels/%s/drains/%d", ch.ID, d.ID), nil)
		mustStatus(t, "DELETE drain", r, http.StatusNoContent)
	}
	t.Logf("node-4 owns drain %d (%s)", d.ID, path)

	s := startTCPSender(t, "tcp1", n1.Addrs.SyslogTCP, ch.Token, 0, 5, 10*time.Millisecond)
	fromNode4 := func(after time.Time) (n int, last time.Time) {
		reqs, _ := recv.requests(path)
		for _, q := range reqs {
			if q.PID == n4.PID && q.At.After(after) {
				n += len(q.Frames)
				last = q.At
			}
		}
		return n, last
	}
	waitFor(t, 20*time.Second, "node-4 to deliver 200 messages", func() (bool, string) {
		n, _ := fromNode4(time.Time{})
		reqs, _ := recv.requests(path)
		if n == 0 && len(reqs) >= 5 && reqs[len(reqs)-1].PID == 0 {
			// The test tells the nodes apart by the sender's PID.
			t.Fatalf("the receiver cannot tell which process sent the drain requests (PID 0 for %d requests): the lookup in /proc/net/tcp and /proc/<pid>/fd failed", len(reqs))
		}
		return n >= 200, fmt.Sprintf("%d from node-4, %d requests", n, len(reqs))
	})

	proxy.Cut()
	cutAt := time.Now()
	var takeover drainRequest
	waitFor(t, lease+15*time.Second, "another node to deliver the drain", func() (bool, string) {
		reqs, _ := recv.requests(path)
		for _, q := range reqs {
			if q.At.After(cutAt) && q.PID != n4.PID && q.PID != 0 {
				takeover = q
				return true, ""
			}
		}
		n, last := fromNode4(cutAt)
		return false, fmt.Sprintf("%d messages from node-4 since the cut, last %v after it", n, last.Sub(cutAt))
	})
	// Watch a little longer for late requests of node-4.
	watchUntil := takeover.At.Add(2 * time.Second)
	if cutAt.Add(lease + 2*time.Second).After(watchUntil) {
		watchUntil = cutAt.Add(lease + 2*time.Second)
	}
	time.Sleep(time.Until(watchUntil))
	s.Stop()
	w := wantAll(t, []*sender{s})

	newOwner := "pid " + fmt.Sprint(takeover.PID)
	for _, n := range c.Nodes {
		if n.PID == takeover.PID {
			newOwner = n.ID
		}
	}
	n4msgs, n4last := fromNode4(cutAt)
	t.Logf("after the cut: node-4 delivered %d messages, its last request %v after the cut; %s took over %v after the cut",
		n4msgs, n4last.Sub(cutAt).Round(10*time.Millisecond), newOwner, takeover.At.Sub(cutAt).Round(10*time.Millisecond))
	const slack = 100 * time.Millisecond
	if !n4last.IsZero() && n4last.After(takeover.At.Add(slack)) {
		t.Errorf("node-4 still delivered %v after %s took the drain over: two nodes delivered at once", n4last.Sub(takeover.At), newOwner)
	}
	if !n4last.IsZero() && n4last.After(cutAt.Add(lease+slack)) {
		t.Errorf("node-4 delivered %v after it was cut off, past its lease (%v)", n4last.Sub(cutAt), lease)
	}

	// Nothing is lost; the batches node-4 delivered but could not record
	// may come again.
	frames, resent, problems := recv.waitComplete(t, path, w, 20*time.Second)
	var lost []string
	for _, p := range problems {
		if !strings.Contains(p, " times") && !strings.HasPrefix(p, "…") {
			lost = append(lost, p) // missing, out of order, malformed
		}
	}
	t.Logf("%d messages sent, %d frames delivered (%d re-sent batches dropped)", w.total(), len(frames), resent)
	if len(lost) > 0 {
		t.Errorf("drain after the takeover: %s", strings.Join(first(lost, 10), "; "))
	}
}
