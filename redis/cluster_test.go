package redis

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/test/redistest"
)

// TestCluster: two nodes share a configuration Redis; the first one's
// channel log is on a shard of its own. The Cluster answers for the
// registry (Nodes), the leases (Owns, Owner, Changed) and the log's health
// (Degraded), and Close hands the node's drains to the other at once.
func TestCluster(t *testing.T) {
	cfgSrv, shard := redistest.Start(t), redistest.Start(t)
	ctx := context.Background()
	const drains = 20
	open := func(id string, log *Log) *Cluster {
		n := openNode(t, id, cfgSrv.URL(), cfgSrv.URL(), staticDrains(drains))
		return NewCluster(n.nodes, n.leases, log)
	}
	l := openTestLog(t, LogConfig{WriteTimeout: 300 * time.Millisecond}, shard)
	a, b := open("a", l), open("b", nil)
	var _ channels.Cluster = a

	// Nodes: both, with the addresses they registered.
	within(t, 5*time.Second, "both nodes listed", func() bool {
		ns, err := a.Nodes(ctx)
		return err == nil && slices.Equal(nodeIDs(ns), []string{"a", "b"})
	})
	ns, err := b.Nodes(ctx)
	if err != nil || len(ns) != 2 {
		t.Fatalf("b.Nodes = %+v, %v; want a and b", ns, err)
	}
	for _, n := range ns {
		if n.Addr != n.ID+":8001" || n.StartedAt.IsZero() || n.SeenAt.IsZero() {
			t.Errorf("b.Nodes lists %+v, want its address %s:8001 and times", n, n.ID)
		}
	}

	// Owns: each drain is delivered by exactly one node, both deliver
	// some; Owner names that node on either node.
	within(t, 5*time.Second, "every drain owned by one node", func() bool {
		na, nb := 0, 0
		for id := int64(1); id <= drains; id++ {
			switch {
			case a.Owns(id) && b.Owns(id):
				t.Fatalf("drain %d owned by both nodes", id)
			case a.Owns(id):
				na++
			case b.Owns(id):
				nb++
			}
		}
		return na+nb == drains && na > 0 && nb > 0
	})
	for id := int64(1); id <= drains; id++ {
		want := "a"
		if b.Owns(id) {
			want = "b"
		}
		for _, c := range []*Cluster{a, b} {
			if got, err := c.Owner(ctx, id); got != want || err != nil {
				t.Fatalf("%s.Owner(%d) = %q, %v; want %q", c.ID(), id, got, err, want)
			}
		}
	}

	// Degraded follows the log's health: a shard that is away makes the
	// node degraded while it buffers; a node without a log never is.
	if r := a.Degraded(); r != "" {
		t.Fatalf("a.Degraded() = %q while its shard is up", r)
	}
	shard.Stop(t)
	appendN(t, l, "degraded", "a", 1, 10) // accepted into the buffer
	within(t, 5*time.Second, "a degraded while its shard is down", func() bool { return a.Degraded() != "" })
	if r := a.Degraded(); !strings.HasPrefix(r, "redis unreachable: ") || !strings.Contains(r, "bytes of accepted messages buffered locally") || strings.HasPrefix(r, "redis unreachable: 0 ") {
		t.Errorf("a.Degraded() = %q, want the buffered bytes", r)
	}
	if r := b.Degraded(); r != "" {
		t.Errorf("b.Degraded() = %q, want \"\" (no log)", r)
	}
	shard.StartAgain(t)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Flush(fctx); err != nil {
		t.Fatalf("Flush after the shard came back: %v", err)
	}
	within(t, 10*time.Second, "a healthy again", func() bool { return a.Degraded() == "" })

	// Close: a's leases are released and its registration removed at
	// once, so b lists itself alone and takes every drain over without
	// waiting for a lease to expire; a's subscription ends.
	changedA, changedB := a.Changed(), b.Changed()
	if err := a.Close(); err != nil {
		t.Fatalf("a.Close() = %v", err)
	}
	for range changedA { // ends: Close closes a's subscriptions
	}
	if ns, err := b.Nodes(ctx); err != nil || !slices.Equal(nodeIDs(ns), []string{"b"}) {
		t.Errorf("b.Nodes after a.Close = %v, %v; want b alone", nodeIDs(ns), err)
	}
	within(t, 5*time.Second, "b owns every drain", func() bool {
		for id := int64(1); id <= drains; id++ {
			if !b.Owns(id) {
				return false
			}
		}
		return true
	})
	select {
	case <-changedB:
	default:
		t.Error("no Changed signal on b after it took a's drains over")
	}
	for id := int64(1); id <= drains; id++ {
		if got, err := b.Owner(ctx, id); got != "b" || err != nil {
			t.Fatalf("b.Owner(%d) = %q, %v; want b", id, got, err)
		}
	}
}

func nodeIDs(ns []channels.Node) []string {
	ids := make([]string, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	slices.Sort(ids)
	return ids
}
