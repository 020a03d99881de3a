package redis

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/test/redistest"
)

var testLeaseCfg = LeasesConfig{TTL: time.Second, Renew: 150 * time.Millisecond, Margin: 250 * time.Millisecond}

func staticDrains(n int) func(context.Context) ([]channels.Drain, error) {
	ds := make([]channels.Drain, n)
	for i := range ds {
		ds[i] = channels.Drain{ID: int64(i + 1), ChannelID: "c", URL: "https://example.org/"}
	}
	return func(context.Context) ([]channels.Drain, error) { return ds, nil }
}

// node is one test node: a registration and its leases.
type node struct {
	nodes  *Nodes
	leases *Leases
}

func openNode(t *testing.T, id, nodesURL, leasesURL string, drains func(context.Context) ([]channels.Drain, error)) *node {
	t.Helper()
	n, err := OpenNodes(context.Background(), NodesConfig{URL: nodesURL, ID: id, Addr: id + ":8001", Heartbeat: 100 * time.Millisecond, TTL: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testLeaseCfg
	cfg.URL, cfg.Nodes, cfg.Drains = leasesURL, n, drains
	l, err := OpenLeases(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); n.Close() })
	return &node{n, l}
}

// halt stops a node as kill -9 would: no more heartbeats or renewals, and
// nothing released.
func (n *node) halt() {
	n.leases.cancel()
	<-n.leases.done
	n.nodes.cancel()
	<-n.nodes.done
}

// checkExclusive fails if two nodes own one drain at once. A hand-over
// leaves at least the lease margin between the old owner's last moment
// and the new owner's first, so owners seen within less than the margin
// owned the drain together; a slower look (the test was descheduled on a
// loaded machine) proves nothing and is skipped.
func checkExclusive(t *testing.T, nodes []*node, drains int) {
	t.Helper()
	for id := int64(1); id <= int64(drains); id++ {
		start := time.Now()
		owners := 0
		for _, n := range nodes {
			if n.leases.Owns(id) {
				owners++
			}
		}
		if owners > 1 && time.Since(start) < testLeaseCfg.Margin {
			t.Fatalf("drain %d owned by %d nodes", id, owners)
		}
	}
}

func ownedBy(n *node, drains int) int {
	c := 0
	for id := int64(1); id <= int64(drains); id++ {
		if n.leases.Owns(id) {
			c++
		}
	}
	return c
}

func TestLeasesSplitAndTakeOver(t *testing.T) {
	srv := redistest.Start(t)
	const drains = 30
	a := openNode(t, "a", srv.URL(), srv.URL(), staticDrains(drains))
	b := openNode(t, "b", srv.URL(), srv.URL(), staticDrains(drains))
	all := []*node{a, b}

	within(t, 20*time.Second, "every drain owned, split over both nodes", func() bool {
		checkExclusive(t, all, drains)
		na, nb := ownedBy(a, drains), ownedBy(b, drains)
		return na+nb == drains && na > 0 && nb > 0
	})
	nodes, err := a.nodes.List(context.Background())
	if err != nil || len(nodes) != 2 || nodes[0].Addr == "" {
		t.Fatalf("List = %+v, %v", nodes, err)
	}
	for id := int64(1); id <= drains; id++ {
		want := "a"
		if b.leases.Owns(id) {
			want = "b"
		}
		if got, _ := a.leases.Owner(context.Background(), id); got != want {
			t.Fatalf("Owner(%d) = %q, want %q", id, got, want)
		}
	}

	changed := b.leases.Changed()
	a.halt()
	start := time.Now()
	within(t, 20*time.Second, "b owns every drain after a died", func() bool {
		checkExclusive(t, all, drains)
		return ownedBy(b, drains) == drains
	})
	t.Logf("take-over after a node died: %v", time.Since(start))
	select {
	case <-changed:
	default:
		t.Fatal("no Changed signal on the node that took over")
	}
	within(t, 20*time.Second, "a gone from the node list", func() bool {
		nodes, err := b.nodes.List(context.Background())
		return err == nil && len(nodes) == 1 && nodes[0].ID == "b"
	})
}

func TestLeasesGracefulHandOver(t *testing.T) {
	srv := redistest.Start(t)
	const drains = 10
	a := openNode(t, "a", srv.URL(), srv.URL(), staticDrains(drains))
	within(t, 20*time.Second, "a owns every drain alone", func() bool { return ownedBy(a, drains) == drains })
	b := openNode(t, "b", srv.URL(), srv.URL(), staticDrains(drains))
	all := []*node{a, b}
	within(t, 20*time.Second, "drains move to b as it joins", func() bool {
		checkExclusive(t, all, drains)
		return ownedBy(b, drains) > 0 && ownedBy(a, drains)+ownedBy(b, drains) == drains
	})
	// Closing releases at once: no lease names a when Close returns, so
	// b takes over without waiting for the lease TTL.
	a.leases.Close()
	for id := int64(1); id <= drains; id++ {
		if owner, err := b.leases.Owner(context.Background(), id); err != nil || owner == "a" {
			t.Fatalf("after a closed its leases, Owner(%d) = %q, %v; want released", id, owner, err)
		}
	}
	a.nodes.Close()
	start := time.Now()
	within(t, 20*time.Second, "b owns everything after a closed", func() bool { return ownedBy(b, drains) == drains })
	t.Logf("take-over after a clean shutdown: %v", time.Since(start))
}

func TestLeasesCutOffStopsOwning(t *testing.T) {
	srv := redistest.Start(t)
	const drains = 8
	proxy := redistest.NewProxy(t, srv)
	a := openNode(t, "a", proxy.URL(), proxy.URL(), staticDrains(drains))
	within(t, 20*time.Second, "a owns every drain", func() bool { return ownedBy(a, drains) == drains })
	changed := a.leases.Changed()
	for len(changed) > 0 {
		<-changed
	}
	proxy.Cut()
	cut := time.Now()
	within(t, testLeaseCfg.TTL+20*time.Second, "a stops owning after it is cut off", func() bool {
		// Owning when the look began is owning at that moment or later:
		// past the TTL that is a drain delivered by a node whose lease
		// may have expired in Redis. A late look (a loaded machine) can
		// only miss it, not invent it.
		at := time.Now()
		if n := ownedBy(a, drains); n > 0 {
			if d := at.Sub(cut); d > testLeaseCfg.TTL {
				t.Fatalf("a owned %d drains %v after being cut off, longer than the lease TTL %v", n, d, testLeaseCfg.TTL)
			}
			return false
		}
		return true
	})
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatal("no Changed signal when the leases expired")
	}
	// Another node takes over once the leases expire in Redis.
	b := openNode(t, "b", srv.URL(), srv.URL(), staticDrains(drains))
	within(t, 20*time.Second, "b takes over", func() bool {
		checkExclusive(t, []*node{a, b}, drains)
		return ownedBy(b, drains) == drains
	})
}

func TestDesiredSpreads(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	count := map[string]int{}
	for id := int64(1); id <= 3000; id++ {
		count[desired(id, nodes)]++
	}
	for _, n := range nodes {
		if count[n] < 800 {
			t.Fatalf("rendezvous spread %v", count)
		}
	}
	// Removing a node moves only its drains.
	moved := 0
	for id := int64(1); id <= 3000; id++ {
		before := desired(id, nodes)
		after := desired(id, slices.Delete(slices.Clone(nodes), 2, 3))
		if before != after && before != "n3" {
			moved++
		}
	}
	if moved != 0 {
		t.Fatalf("%d drains moved between surviving nodes", moved)
	}
}
