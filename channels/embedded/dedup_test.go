package embedded_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
)

// keyed returns a batch of n messages for ch with an idempotency key.
func keyed(ch, key string, n int) *channels.Batch {
	b := &channels.Batch{ChannelID: ch, Key: key, Time: time.Now().UnixNano()}
	for i := range n {
		b.Add(msg(ch, i))
	}
	return b
}

func next(t *testing.T, l channels.Log, ch string) uint64 {
	t.Helper()
	info, err := l.Info(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return info.Next
}

func TestLogIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Tiny segments: the records holding the keys are deleted by retention,
	// so after the restart the keys come from the channel checkpoint.
	cfg := embedded.LogConfig{Dir: dir, SegmentBytes: 4 << 10, Default: channels.Retention{Count: 10}}
	l := openLog(t, cfg)
	app := func(key string, n int) {
		t.Helper()
		if err := l.AppendDurable(ctx, []*channels.Batch{keyed("c", key, n)}); err != nil {
			t.Fatalf("AppendDurable(key %q) = %v", key, err)
		}
	}
	app("k1", 3)
	app("k1", 3)
	if got := next(t, l, "c"); got != 4 {
		t.Fatalf("after a repeated key Next = %d, want 4", got)
	}
	// Concurrent retries of one key store it once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.AppendDurable(ctx, []*channels.Batch{keyed("c", "k2", 2)}); err != nil {
				t.Errorf("AppendDurable = %v", err)
			}
		}()
	}
	wg.Wait()
	if got := next(t, l, "c"); got != 6 {
		t.Fatalf("after 8 concurrent appends of one key Next = %d, want 6", got)
	}
	// The same key in another channel is another batch; no key is no dedup.
	app("k1", 1)
	if err := l.AppendDurable(ctx, []*channels.Batch{keyed("d", "k1", 1), keyed("c", "", 1), keyed("c", "", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := next(t, l, "d"); got != 2 {
		t.Fatalf("channel d Next = %d, want 2", got)
	}
	if got := next(t, l, "c"); got != 8 {
		t.Fatalf("channel c Next = %d, want 8", got)
	}
	// Push the keyed records out of retention and their segments away.
	if err := l.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		app(fmt.Sprintf("fill-%d", i), 5)
	}
	l.SweepNow()
	if st := l.Stats(); st.Segments > 3 {
		t.Fatalf("%d segments left: the test wants the keyed records' segments deleted", st.Segments)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, cfg)
	defer l.Close()
	before := next(t, l, "c")
	app("k1", 3)
	app("k2", 2)
	app("fill-199", 5)
	if got := next(t, l, "c"); got != before {
		t.Fatalf("after a restart, repeated keys were stored again: Next %d → %d", before, got)
	}
	app("k3", 1)
	if got := next(t, l, "c"); got != before+1 {
		t.Fatalf("a new key after restart: Next %d → %d, want +1", before, got)
	}
}

func TestLogIdempotencyWindow(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := openLog(t, embedded.LogConfig{DedupWindow: time.Hour, Now: clock})
	defer l.Close()
	for range 2 {
		if err := l.AppendDurable(ctx, []*channels.Batch{keyed("c", "k", 1)}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	l.SweepNow()
	b := keyed("c", "k", 1)
	b.Time = now.UnixNano()
	if err := l.AppendDurable(ctx, []*channels.Batch{b}); err != nil {
		t.Fatal(err)
	}
	if got := next(t, l, "c"); got != 3 {
		t.Fatalf("a key past the window: Next = %d, want 3", got)
	}
}
