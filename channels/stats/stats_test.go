package stats

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func newTestRegistry(now *int64) *Registry {
	r := NewRegistry()
	r.now = func() int64 { return *now }
	return r
}

func TestCounts(t *testing.T) {
	now := int64(100 * time.Minute)
	r := newTestRegistry(&now)
	c := r.Channel("ch")
	for range 3 {
		c.Received("web", []byte("web.1"), 6)
	}
	c.Received("web", []byte("web.2"), 3)
	c.Received("worker", []byte("worker.1"), 3)
	c.Dropped(Filter, "web", []byte("web.1"), 6)
	c.DroppedBytes(RateLimit, []byte("worker"), []byte("worker.1"), 3)

	s := c.Snapshot()
	if s.Total.Received != 5 || s.Total.Dropped["filter"] != 1 || s.Total.Dropped["rate_limit"] != 1 {
		t.Errorf("total = %+v", s.Total)
	}
	if s.LastMinute.Received != 5 {
		t.Errorf("last minute = %+v", s.LastMinute)
	}
	if got := s.Sources["web"].Total.Received; got != 4 {
		t.Errorf("sources[web] received = %d, want 4", got)
	}
	if got := s.ProcessTypes["web"].Total.Received; got != 4 {
		t.Errorf("process_types[web] received = %d, want 4", got)
	}
	if got := s.Severities["3"].Total.Received; got != 2 {
		t.Errorf("severities[3] received = %d, want 2", got)
	}
	if got := s.Severities["6"].Total.Dropped["filter"]; got != 1 {
		t.Errorf("severities[6] dropped filter = %d, want 1", got)
	}
	// The sums per dimension are the total.
	for name, m := range map[string]map[string]Snapshot{"sources": s.Sources, "process_types": s.ProcessTypes, "severities": s.Severities} {
		var sum uint64
		for _, v := range m {
			sum += v.Total.Received
		}
		if sum != s.Total.Received {
			t.Errorf("%s add up to %d, want %d", name, sum, s.Total.Received)
		}
	}

	// Half a minute into the next minute: half of the previous one counts.
	now += int64(time.Minute) + int64(30*time.Second)
	c.Received("web", []byte("web.1"), 6)
	if s := c.Snapshot(); s.LastMinute.Received != 1+3 || s.Total.Received != 6 {
		t.Errorf("after 1.5 min: last minute %d (want 4), total %d", s.LastMinute.Received, s.Total.Received)
	}
	// Two minutes later nothing is recent.
	now += 2 * int64(time.Minute)
	if s := c.Snapshot(); s.LastMinute.Received != 0 || s.Total.Received != 6 {
		t.Errorf("after 3.5 min: last minute %d, total %d", s.LastMinute.Received, s.Total.Received)
	}
}

func TestMaxKeys(t *testing.T) {
	now := int64(0)
	c := newTestRegistry(&now).Channel("ch")
	for i := range MaxKeys + 10 {
		c.Received("s"+strconv.Itoa(i), []byte("p"), 0)
	}
	s := c.Snapshot()
	if len(s.Sources) != MaxKeys+1 || s.Sources[Other].Total.Received != 10 {
		t.Errorf("%d sources, other %d", len(s.Sources), s.Sources[Other].Total.Received)
	}
}

func TestCountAllocs(t *testing.T) {
	c := NewRegistry().Channel("ch")
	procid := []byte("web.1")
	c.Received("web", procid, 3)
	c.DroppedBytes(Filter, []byte("web"), procid, 3)
	if n := testing.AllocsPerRun(1000, func() {
		c.Received("web", procid, 3)
		c.DroppedBytes(Filter, []byte("web"), procid, 3)
	}); n != 0 {
		t.Errorf("%v allocations per count, want 0", n)
	}
}

func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := r.Channel("ch")
			for i := range 1000 {
				c.Received("s"+strconv.Itoa(i%3), []byte("p."+strconv.Itoa(g)), i%8)
			}
		}()
	}
	wg.Wait()
	if s := r.Channel("ch").Snapshot(); s.Total.Received != 4000 || s.Sources["s0"].Total.Received != 4*334 {
		t.Errorf("total %d, s0 %d", s.Total.Received, s.Sources["s0"].Total.Received)
	}
}

func BenchmarkReceived(b *testing.B) {
	c := NewRegistry().Channel("ch")
	procid := []byte("web.1")
	b.ReportAllocs()
	for b.Loop() {
		c.Received("web", procid, 3)
	}
}
