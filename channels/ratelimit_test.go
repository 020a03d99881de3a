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
