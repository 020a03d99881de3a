package channels

import (
	"sync"
	"testing"
	"time"
)

func TestLimiterMessages(t *testing.T) {
	l := NewLimiter("c")
	l.Set(&RateLimit{MessagesPerS: 10, Burst: 5})
	now := time.Unix(1000, 0).UnixNano()
	var ok int
	for range 20 {
		if a, _ := l.Allow(now, 100, nil); a {
			ok++
		}
	}
	if ok != 5 {
		t.Fatalf("burst: %d admitted, want 5", ok)
	}
	// 0.5 s later: 5 more tokens.
	now += int64(500 * time.Millisecond)
	ok = 0
	for range 20 {
		if a, _ := l.Allow(now, 100, nil); a {
			ok++
		}
	}
	if ok != 5 {
		t.Fatalf("after 0.5 s: %d admitted, want 5", ok)
	}
	if l.Total() != 30 {
		t.Fatalf("Total = %d, want 30", l.Total())
	}
	n, since := l.TakeDrops()
	if n != 30 || since.UnixNano() != time.Unix(1000, 0).UnixNano() {
		t.Fatalf("TakeDrops = %d, %v; want 30 since the first drop", n, since)
	}
	if n, _ := l.TakeDrops(); n != 0 {
		t.Fatalf("TakeDrops again = %d", n)
	}
}

func TestLimiterFirstDropAndDefault(t *testing.T) {
	l := NewLimiter("c")
	def := &RateLimit{MessagesPerS: 1}
	now := time.Unix(1, 0).UnixNano()
	if ok, _ := l.Allow(now, 1, nil); !ok {
		t.Fatal("no limit: refused")
	}
	if ok, _ := l.Allow(now, 1, def); !ok {
		t.Fatal("default: first message refused")
	}
	ok, first := l.Allow(now, 1, def)
	if ok || !first {
		t.Fatalf("second = %v, first %v; want refused, first drop", ok, first)
	}
	if _, first := l.Allow(now, 1, def); first {
		t.Fatal("third drop reported as first")
	}
	l.TakeDrops()
	if _, first := l.Allow(now, 1, def); !first {
		t.Fatal("drop after TakeDrops not reported as first")
	}
	// The channel's own limit wins over the default.
	l.Set(&RateLimit{MessagesPerS: 1000})
	if ok, _ := l.Allow(now, 1, def); !ok {
		t.Fatal("own limit: refused")
	}
}

func TestLimiterBytesAndTake(t *testing.T) {
	l := NewLimiter("c")
	l.Set(&RateLimit{BytesPerS: 1000})
	now := time.Unix(1, 0).UnixNano()
	if ok, _ := l.Take(now, 3, 900, nil); !ok {
		t.Fatal("900 bytes of 1000 refused")
	}
	ok, retry := l.Take(now, 1, 500, nil)
	if ok || retry < 350*time.Millisecond || retry > 450*time.Millisecond {
		t.Fatalf("500 more bytes = %v, retry %v; want refused, retry 0.4 s", ok, retry)
	}
	l.Refund(3, 900, nil)
	if ok, _ := l.Take(now, 1, 500, nil); !ok {
		t.Fatal("after refund: refused")
	}
	// Larger than the bucket: admitted when full, leaving debt.
	now += int64(10 * time.Second)
	if ok, _ := l.Take(now, 1, 5000, nil); !ok {
		t.Fatal("oversize request with a full bucket refused")
	}
	if ok, retry := l.Take(now+int64(time.Second), 1, 10, nil); ok || retry < 3*time.Second {
		t.Fatalf("in debt: %v, retry %v; want refused for about 4 s", ok, retry)
	}
}

// TestLimiterConcurrentDropsAddUp: drops counted from many goroutines and
// taken concurrently add up exactly.
func TestLimiterConcurrentDropsAddUp(t *testing.T) {
	l := NewLimiter("c")
	l.Set(&RateLimit{MessagesPerS: 1, Burst: 1})
	now := time.Unix(1, 0).UnixNano()
	var wg sync.WaitGroup
	var admitted sync.Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range 10000 {
				if ok, _ := l.Allow(now, 10, nil); ok {
					n++
				}
			}
			admitted.Store(g, n)
		}()
	}
	var taken uint64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		n, _ := l.TakeDrops()
		taken += n
		select {
		case <-done:
			n, _ := l.TakeDrops()
			taken += n
			ok := 0
			admitted.Range(func(_, v any) bool { ok += v.(int); return true })
			if ok != 1 || taken != 80000-1 || l.Total() != taken {
				t.Fatalf("admitted %d, drops taken %d, total %d; want 1, 79999, 79999", ok, taken, l.Total())
			}
			return
		default:
		}
	}
}

func TestLimiterLease(t *testing.T) {
	now := time.Now().UnixNano()
	l := NewLimiter("c")
	l.Set(&RateLimit{MessagesPerS: 100, BytesPerS: 10000}) // buckets: 100 messages, 10,000 bytes
	// The message at hand and a quarter of what is left beyond it.
	n, b, ok, _ := l.Lease(now, 256, 1<<20, 50, nil)
	if !ok || n != 25 || b != 50+(10000-50)/4 {
		t.Fatalf("Lease = %d, %d, %v; want 25, %d, true", n, b, ok, 50+(10000-50)/4)
	}
	// Asked for less than a quarter: what was asked.
	if n, b, ok, _ := l.Lease(now, 5, 100, 100, nil); !ok || n != 5 || b != 100 {
		t.Fatalf("small Lease = %d, %d, %v; want 5, 100, true", n, b, ok)
	}
	// Drain the message bucket: leases shrink to one message, then none.
	taken := 30
	for {
		n, _, ok, _ := l.Lease(now, 256, 10, 1, nil)
		if !ok {
			break
		}
		if n < 1 || n > 256 {
			t.Fatalf("Lease granted %d messages", n)
		}
		taken += n
	}
	if taken != 100 || l.Total() != 1 {
		t.Fatalf("leased %d messages of 100, %d dropped; want 100 and 1", taken, l.Total())
	}
	// What goes back can be leased again.
	l.Refund(8, 0, nil)
	if n, _, ok, _ := l.Lease(now, 256, 10, 1, nil); !ok || n != 2 {
		t.Fatalf("after a refund of 8: Lease = %d, %v; want 2 (one and a quarter of 7), true", n, ok)
	}
	// A message larger than the bytes left is refused and nothing taken.
	l2 := NewLimiter("d")
	l2.Set(&RateLimit{MessagesPerS: 100, BytesPerS: 100})
	if _, _, ok, _ := l2.Lease(now, 1, 60, 60, nil); !ok {
		t.Fatal("first 60 bytes of 100 refused")
	}
	if _, _, ok, first := l2.Lease(now, 1, 60, 60, nil); ok || !first {
		t.Fatalf("60 bytes with 40 left: ok %v first %v; want refused, first drop", ok, first)
	}
	if n, _, ok, _ := l2.Lease(now, 256, 40, 40, nil); !ok || n != 25 {
		t.Fatalf("after a refusal: Lease = %d, %v; want 25 messages (one and a quarter of the other 98), true", n, ok)
	}
	// Without a limit: everything asked, no lock.
	if n, b, ok, _ := NewLimiter("e").Lease(now, 256, 1000, 2000, nil); !ok || n != 256 || b != 2000 {
		t.Fatalf("unlimited Lease = %d, %d, %v", n, b, ok)
	}
}
