package redis

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/test/redistest"
)

// keyed returns messages from..to of node in one batch with key.
func keyed(ch, key, node string, from, to int) *channels.Batch {
	b := &channels.Batch{ChannelID: ch, Key: key}
	for i := from; i <= to; i++ {
		b.Add(msg(node, i))
	}
	return b
}

func appendKeyed(t testing.TB, l *Log, ch, key, node string, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.AppendDurable(ctx, []*channels.Batch{keyed(ch, key, node, from, to)}); err != nil {
		t.Fatalf("AppendDurable(%s key %s) = %v", ch, key, err)
	}
}

func duplicates(ls ...*Log) int64 {
	var n int64
	for _, l := range ls {
		for _, st := range l.Stats() {
			n += st.Duplicates
		}
	}
	return n
}

// TestLogKeyTwoNodes: two nodes (Logs with their own writer fields) on one
// shard get the same keyed batches, one after the other and at once: each
// is stored once, whole, and batches with other keys are stored too.
func TestLogKeyTwoNodes(t *testing.T) {
	srv := redistest.Start(t)
	cfg := LogConfig{MaxEntryMessages: 4}
	a, b := openTestLog(t, cfg, srv), openTestLog(t, cfg, srv)
	const ch = "dedup-two"

	appendKeyed(t, a, ch, "first", "first", 1, 10)
	appendKeyed(t, b, ch, "first", "first", 1, 10)
	if d := duplicates(a, b); d != 1 {
		t.Fatalf("duplicates after a sequential retry = %d, want 1", d)
	}

	const keys = 60
	var wg sync.WaitGroup
	for _, l := range []*Log{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := l.AppendDurable(ctx, []*channels.Batch{keyed(ch, fmt.Sprint("k", k), fmt.Sprint("k", k), 1, 1+k%7)})
				cancel()
				if err != nil {
					t.Errorf("AppendDurable(key k%d) = %v", k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if d := duplicates(a, b); d != 1+keys {
		t.Fatalf("duplicates = %d, want %d", d, 1+keys)
	}

	// Every batch once, its messages together and in order.
	for _, l := range []*Log{a, b} {
		_, msgs, offs := readAll(t, l, ch, channels.Cursor{})
		want := map[string][][]byte{"first": nil}
		for i := 1; i <= 10; i++ {
			want["first"] = append(want["first"], msg("first", i))
		}
		total := 10
		for k := range keys {
			node := fmt.Sprint("k", k)
			for i := 1; i <= 1+k%7; i++ {
				want[node] = append(want[node], msg(node, i))
			}
			total += 1 + k%7
		}
		if len(msgs) != total {
			t.Fatalf("read %d messages, want %d", len(msgs), total)
		}
		for i := 0; i < len(msgs); {
			if offs[i] != uint64(i+1) {
				t.Fatalf("record %d at offset %d", i, offs[i])
			}
			var node string
			if _, err := fmt.Sscanf(string(msgs[i][bytes.Index(msgs[i], []byte("node ")):]), "node %s", &node); err != nil {
				t.Fatalf("record %q: %v", msgs[i], err)
			}
			batch, ok := want[node]
			if !ok {
				t.Fatalf("batch %s stored twice (again at offset %d)", node, offs[i])
			}
			delete(want, node)
			for j, m := range batch {
				if i+j >= len(msgs) || !bytes.Equal(msgs[i+j], m) {
					t.Fatalf("batch %s not stored whole at offset %d", node, offs[i])
				}
			}
			i += len(batch)
		}
	}
}

// TestLogKeyWindow: a key is remembered for DedupWindow from when it was
// stored (on the Log's clock), at most DedupMaxKeys per channel (the
// oldest go first), in a sorted set that expires with the channel's log
// and goes with Delete.
func TestLogKeyWindow(t *testing.T) {
	srv := redistest.Start(t)
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	l := openTestLog(t, LogConfig{DedupWindow: time.Minute, DedupMaxKeys: 3, Now: now}, srv)
	c := testClient(t, srv)
	ctx := context.Background()
	const ch = "dedup-window"
	next := func() uint64 {
		t.Helper()
		li, err := l.Info(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		return li.Next
	}

	appendKeyed(t, l, ch, "k1", "a", 1, 2)
	skew.Store(int64(50 * time.Second))
	appendKeyed(t, l, ch, "k1", "a", 1, 2)
	if n := next(); n != 3 {
		t.Fatalf("k1 sent again within the window: next = %d, want 3", n)
	}
	skew.Store(int64(61 * time.Second))
	appendKeyed(t, l, ch, "k1", "a", 1, 2)
	if n := next(); n != 5 {
		t.Fatalf("k1 sent again after the window: next = %d, want 5", n)
	}
	appendKeyed(t, l, ch, "k1", "a", 1, 2)
	if n := next(); n != 5 {
		t.Fatalf("k1 sent again within its second window: next = %d, want 5", n)
	}

	// The bound: k1 is the oldest of four.
	for _, k := range []string{"k2", "k3", "k4"} {
		appendKeyed(t, l, ch, k, "a", 1, 1)
	}
	if n, err := c.ZCard(ctx, keysKey(ch)).Result(); err != nil || n != 3 {
		t.Fatalf("ZCARD = %d, %v; want 3", n, err)
	}
	appendKeyed(t, l, ch, "k4", "a", 1, 1)
	if n := next(); n != 8 {
		t.Fatalf("k4 sent again: next = %d, want 8", n)
	}
	appendKeyed(t, l, ch, "k1", "a", 1, 2)
	if n := next(); n != 10 {
		t.Fatalf("k1 sent again after 3 newer keys: next = %d, want 10", n)
	}
	// Keys past the window are pruned by the next keyed append.
	skew.Store(int64(200 * time.Second))
	appendKeyed(t, l, ch, "k5", "a", 1, 1)
	if n, err := c.ZCard(ctx, keysKey(ch)).Result(); err != nil || n != 1 {
		t.Fatalf("ZCARD after the window = %d, %v; want 1", n, err)
	}
	if ttl, err := c.PTTL(ctx, keysKey(ch)).Result(); err != nil || ttl <= 0 {
		t.Fatalf("PTTL of the keys = %v, %v; want an expiry", ttl, err)
	}
	if err := l.Delete(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, keysKey(ch)).Result(); err != nil || n != 0 {
		t.Fatalf("keys exist after Delete: %d, %v", n, err)
	}
	appendKeyed(t, l, ch, "k5", "a", 1, 1)
	if n := next(); n != 2 {
		t.Fatalf("k5 sent again after Delete: next = %d, want 2", n)
	}
}

// TestSpoolKeyReplay: a node spools a keyed batch while its shard is down
// (AppendDurable returns once it is fsynced) and is killed; the client
// sends the batch again to another node, which stores it. The first node
// restarts and replays its spool: the batch is not stored again.
func TestSpoolKeyReplay(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	cfg := spoolConfig(dir)
	a := openTestLog(t, cfg, srv)
	const ch = "dedup-replay"
	srv.Stop(t)
	appendDurable(t, a, ch, "x", 1, 3)
	appendKeyed(t, a, ch, "k", "x", 4, 1000)
	crash(a)
	srv.StartAgain(t)

	b := openTestLog(t, LogConfig{Default: cfg.Default}, srv)
	appendKeyed(t, b, ch, "k", "x", 4, 1000)
	a2 := openTestLog(t, cfg, srv)
	flushLog(t, a2)
	within(t, 20*time.Second, "the replay written", a2.Healthy)
	if d := duplicates(a2); d != 1 {
		t.Fatalf("duplicates on the restarted node = %d, want 1", d)
	}
	// b's batch first, then a's unkeyed messages replayed.
	_, msgs, _ := readAll(t, a2, ch, channels.Cursor{})
	var want [][]byte
	for i := 4; i <= 1000; i++ {
		want = append(want, msg("x", i))
	}
	for i := 1; i <= 3; i++ {
		want = append(want, msg("x", i))
	}
	if !slices.EqualFunc(msgs, want, bytes.Equal) {
		t.Fatalf("read %d messages, want %d: 4..1000 once, then 1..3", len(msgs), len(want))
	}
}

// TestSpoolKeyTornBatch: the spool's tail cuts a keyed batch that was not
// acknowledged; the replay stores none of it (a part stored under the key
// would make the client's retry store nothing of the rest), and the retry
// stores it whole.
func TestSpoolKeyTornBatch(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	cfg := spoolConfig(dir)
	l := openTestLog(t, cfg, srv)
	const ch = "dedup-torn"
	srv.Stop(t)
	appendDurable(t, l, ch, "x", 1, 3)
	appendKeyed(t, l, ch, "k", "x", 4, 8)
	crash(l)
	segs, _ := filepath.Glob(filepath.Join(dir, "shard-0", "*"+spoolExt))
	slices.Sort(segs)
	last := segs[len(segs)-1]
	fi, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, fi.Size()-5); err != nil {
		t.Fatal(err)
	}
	srv.StartAgain(t)
	l2 := openTestLog(t, cfg, srv)
	flushLog(t, l2)
	checkExactly(t, l2, ch, "x", 1, 3)
	appendKeyed(t, l2, ch, "k", "x", 4, 8)
	checkExactly(t, l2, ch, "x", 1, 8)
}
