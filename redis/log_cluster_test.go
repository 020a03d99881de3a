package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/test/redistest"
)

func msg(node string, i int) []byte {
	return fmt.Appendf(nil, "<134>1 2024-01-01T00:00:00Z host app web.1 - - node %s message %d", node, i)
}

func appendN(t testing.TB, l *Log, ch, node string, from, to int) {
	t.Helper()
	b := &channels.Batch{ChannelID: ch}
	for i := from; i <= to; i++ {
		b.Add(msg(node, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Append(ctx, []*channels.Batch{b}); err != nil {
		t.Fatalf("Append(%s %d..%d) = %v", node, from, to, err)
	}
}

// readAll reads a channel from offset 1 to the end.
func readAll(t testing.TB, l *Log, ch string, from channels.Cursor) (channels.ReadResult, [][]byte, []uint64) {
	t.Helper()
	var out [][]byte
	var offs []uint64
	var r channels.Records
	var first channels.ReadResult
	for i := 0; ; i++ {
		res, err := l.Read(context.Background(), ch, from, 500, 0, &r)
		if err != nil {
			t.Fatalf("Read(%s, %+v) = %v", ch, from, err)
		}
		if i == 0 {
			first = res
		}
		for j := range r.Len() {
			rec := r.At(j)
			out = append(out, bytes.Clone(rec.Data))
			offs = append(offs, rec.Offset)
		}
		if r.Len() == 0 {
			first.Next = res.Next
			return first, out, offs
		}
		from = res.Next
	}
}

// TestLogTwoNodes: two nodes append to one channel at once; offsets are
// dense and unique, every message is stored once, and a tail on one node
// sees all of them in order, including those appended on the other.
func TestLogTwoNodes(t *testing.T) {
	srv := redistest.Start(t)
	a := openTestLog(t, LogConfig{Default: channels.Retention{Count: 100000}}, srv)
	b := openTestLog(t, LogConfig{Default: channels.Retention{Count: 100000}}, srv)
	const ch, perNode, batch = "shared", 3000, 7
	total := 2 * perNode

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tail := make(chan error, 1)
	var lat []time.Duration
	go func() {
		var r channels.Records
		cur := channels.Cursor{Offset: 1}
		for cur.Offset <= uint64(total) {
			res, err := b.Read(ctx, ch, cur, 256, 0, &r)
			if err != nil {
				tail <- err
				return
			}
			if res.Missed != 0 || (res.Reset && cur.Epoch != "") {
				tail <- fmt.Errorf("tail: unexpected loss %+v", res)
				return
			}
			now := time.Now().UnixNano()
			for i := range r.Len() {
				rec := r.At(i)
				if rec.Offset != cur.Offset+uint64(i) {
					tail <- fmt.Errorf("tail: offset %d, want %d", rec.Offset, cur.Offset+uint64(i))
					return
				}
				lat = append(lat, time.Duration(now-rec.Time))
			}
			cur = res.Next
			if r.Len() == 0 {
				if err := b.Wait(ctx, ch, cur); err != nil {
					tail <- err
					return
				}
			}
		}
		tail <- nil
	}()

	var wg sync.WaitGroup
	for _, n := range []struct {
		l    *Log
		name string
	}{{a, "a"}, {b, "b"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= perNode; i += batch {
				appendN(t, n.l, ch, n.name, i, min(i+batch-1, perNode))
			}
		}()
	}
	wg.Wait()
	if err := <-tail; err != nil {
		t.Fatal(err)
	}
	_, msgs, offs := readAll(t, a, ch, channels.Cursor{Offset: 1})
	if len(msgs) != total {
		t.Fatalf("read %d messages, want %d", len(msgs), total)
	}
	seen := map[string]bool{}
	last := map[byte]int{}
	for i, m := range msgs {
		if offs[i] != uint64(i+1) {
			t.Fatalf("offset %d at position %d", offs[i], i)
		}
		if seen[string(m)] {
			t.Fatalf("message %q stored twice", m)
		}
		seen[string(m)] = true
		// Each node's messages keep their order.
		var node string
		var n int
		fmt.Sscanf(string(m[bytes.Index(m, []byte("node")):]), "node %s message %d", &node, &n)
		if n <= last[node[0]] {
			t.Fatalf("node %s: message %d after %d", node, n, last[node[0]])
		}
		last[node[0]] = n
	}
	t.Logf("tail latency (append on either node → read on b): %s", percentiles(lat))
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := append([]time.Duration(nil), d...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	p := func(q float64) time.Duration { return s[int(q*float64(len(s)-1))] }
	return fmt.Sprintf("p50 %v p99 %v max %v (n=%d)", p(0.5), p(0.99), s[len(s)-1], len(s))
}

// TestLogSharding: channels spread over two shards by Logplex's rule and
// each is readable; the stream lives on the shard the rule names.
func TestLogSharding(t *testing.T) {
	s1, s2 := redistest.Start(t), redistest.Start(t)
	l := openTestLog(t, LogConfig{}, s1, s2)
	sorted := sortShardURLs([]string{s1.URL(), s2.URL()})
	clients := map[string]*redistest.Server{s1.URL(): s1, s2.URL(): s2}
	count := [2]int{}
	for i := range 40 {
		ch := fmt.Sprintf("app-%d", i)
		appendN(t, l, ch, "a", 1, 3)
		count[l.ShardOf(ch)]++
	}
	if count[0] == 0 || count[1] == 0 {
		t.Fatalf("channels per shard %v: not spread", count)
	}
	for i := range 40 {
		ch := fmt.Sprintf("app-%d", i)
		_, msgs, _ := readAll(t, l, ch, channels.Cursor{})
		if len(msgs) != 3 || !bytes.Equal(msgs[2], msg("a", 3)) {
			t.Fatalf("%s: read %q", ch, msgs)
		}
		home := clients[sorted[l.ShardOf(ch)]]
		stream, _, _ := logKeys(ch)
		if n := testClient(t, home).Exists(context.Background(), stream).Val(); n != 1 {
			t.Fatalf("%s: stream not on shard %d", ch, l.ShardOf(ch))
		}
	}
}

func TestShardPickerLogplexRule(t *testing.T) {
	// With two shards the split is at 2^127: md5("1") = c4ca4238... and
	// md5("2") = c81e728d... go to the second, md5("a") = 0cc175b9... to
	// the first.
	p := newShardPicker(2)
	for _, tc := range []struct {
		id   string
		want int
	}{{"1", 1}, {"2", 1}, {"a", 0}} {
		if got := p.pick(tc.id); got != tc.want {
			t.Errorf("pick(%q) = %d, want %d", tc.id, got, tc.want)
		}
	}
	if got := newShardPicker(1).pick("anything"); got != 0 {
		t.Errorf("one shard: pick = %d", got)
	}
	got := sortShardURLs([]string{"redis://b:6379/#frag1", "redis://a:6379/#frag2", "redis://c:6379"})
	want := []string{"redis://b:6379/#frag1", "redis://a:6379/#frag2", "redis://c:6379"}
	// "frag1" < "frag2" < "redis://c:6379"
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sortShardURLs = %v, want %v", got, want)
		}
	}
}

// TestLogShardRestart: a shard that restarts empty while messages arrive.
// Append keeps accepting into the buffer; the buffered messages are
// written when the shard is back, in a new epoch; a reader of the old
// epoch is told (Reset).
func TestLogShardRestart(t *testing.T) {
	srv := redistest.Start(t)
	l := openTestLog(t, LogConfig{WriteTimeout: 300 * time.Millisecond}, srv)
	const ch = "restart"
	appendN(t, l, ch, "a", 1, 10)
	info, err := l.Info(context.Background(), ch)
	if err != nil || info.Next != 11 {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	old := channels.Cursor{Epoch: info.Epoch, Offset: 11}

	srv.Stop(t)
	for i := 11; i <= 30; i++ {
		appendN(t, l, ch, "a", i, i) // accepted while the shard is down
	}
	within(t, 20*time.Second, "unhealthy while the shard is down", func() bool { return !l.Healthy() })
	if l.BufferedBytes() == 0 {
		t.Fatal("nothing buffered while the shard is down")
	}
	srv.StartAgain(t) // empty: the history is lost
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush after the shard came back: %v", err)
	}
	within(t, 20*time.Second, "healthy again", l.Healthy)
	res, msgs, _ := readAll(t, l, ch, old)
	if !res.Reset || res.Epoch == info.Epoch {
		t.Fatalf("Read(old epoch) = %+v, want Reset into a new epoch", res)
	}
	if len(msgs) != 20 || !bytes.Equal(msgs[0], msg("a", 11)) || !bytes.Equal(msgs[19], msg("a", 30)) {
		t.Fatalf("after the restart read %d messages (%q...), want the 20 buffered ones", len(msgs), msgs[:min(1, len(msgs))])
	}
}

// TestLogPausedShardNoDuplicates: a shard that stops answering (as in a
// partition) makes writes time out; they are retried after it answers
// again, and writes that had landed are not applied twice. The rounds
// sent while it is paused wait in its sockets and are all executed when
// it resumes, after the writer gave up on them: each is applied once.
func TestLogPausedShardNoDuplicates(t *testing.T) {
	srv := redistest.Start(t)
	l := openTestLog(t, LogConfig{WriteTimeout: 100 * time.Millisecond, Metrics: NewMetrics(nil)}, srv)
	const ch = "paused"
	appendBatches := func(from, to int) {
		for i := from; i <= to; i += 10 {
			appendN(t, l, ch, "a", i, i+9)
		}
	}
	appendBatches(1, 500)
	flushLog(t, l)

	srv.Pause(t)
	appendBatches(501, 1000)
	// Two failed rounds: a round timed out and was sent again while the
	// shard was paused.
	within(t, 30*time.Second, "a write retried while the shard is paused", func() bool {
		return l.Stats()[0].WriteErrors >= 2
	})
	if l.Healthy() {
		t.Fatal("healthy while the shard is paused")
	}
	srv.Resume(t)
	appendBatches(1001, 2000)
	flushLog(t, l)
	l.SetRetention(ch, channels.Retention{Count: 10000})
	_, msgs, offs := readAll(t, l, ch, channels.Cursor{})
	if len(msgs) != 1500 && len(msgs) != 2000 {
		t.Logf("read %d messages", len(msgs))
	}
	// Default retention keeps the newest 1500: they must be exactly
	// messages 501..2000, in order, at offsets 501..2000.
	if len(msgs) != 1500 {
		t.Fatalf("read %d messages, want the newest 1500", len(msgs))
	}
	for i, m := range msgs {
		if want := msg("a", 501+i); !bytes.Equal(m, want) || offs[i] != uint64(501+i) {
			t.Fatalf("record %d at offset %d = %q, want %q at %d", i, offs[i], m, want, 501+i)
		}
	}
}

// TestLogBufferFull: with the shard down, Append fills the bounded buffer
// and then fails with ErrLogFull once its context ends; everything that
// was accepted is written when the shard returns.
func TestLogBufferFull(t *testing.T) {
	srv := redistest.Start(t)
	l := openTestLog(t, LogConfig{BufferBytes: 32 << 10, WriteTimeout: 200 * time.Millisecond, Default: channels.Retention{Count: 100000}}, srv)
	const ch = "full"
	appendN(t, l, ch, "a", 1, 1)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	accepted := 1
	var fullErr error
	start := time.Now()
	for i := 2; i < 100000; i++ {
		b := &channels.Batch{ChannelID: ch}
		b.Add(msg("a", i))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		t0 := time.Now()
		err := l.Append(ctx, []*channels.Batch{b})
		cancel()
		if err != nil {
			fullErr = err
			if d := time.Since(t0); d < 40*time.Millisecond {
				t.Fatalf("Append failed after %v, before its deadline", d)
			}
			break
		}
		accepted++
	}
	if !errors.Is(fullErr, channels.ErrLogFull) {
		t.Fatalf("Append with a full buffer = %v, want ErrLogFull", fullErr)
	}
	if l.Healthy() {
		t.Fatal("healthy with a full buffer")
	}
	t.Logf("accepted %d messages (%d bytes buffered) in %v before ErrLogFull", accepted, l.BufferedBytes(), time.Since(start))
	srv.StartAgain(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, msgs, _ := readAll(t, l, ch, channels.Cursor{})
	// Message 1 was lost with the shard's data; the rest were buffered.
	if len(msgs) != accepted-1 || !bytes.Equal(msgs[0], msg("a", 2)) || !bytes.Equal(msgs[len(msgs)-1], msg("a", accepted)) {
		t.Fatalf("read %d messages after the shard returned, want the %d buffered", len(msgs), accepted-1)
	}
}

// TestLogManyTails: tails of many channels on one node follow appends made
// on another node; every tail sees every message of its channel in order.
func TestLogManyTails(t *testing.T) {
	srv := redistest.Start(t)
	a := openTestLog(t, LogConfig{}, srv)
	b := openTestLog(t, LogConfig{}, srv)
	const chans, tailsPer, perChan = 20, 2, 300
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	errs := make(chan error, chans*tailsPer)
	var wg sync.WaitGroup
	for c := range chans {
		ch := fmt.Sprintf("tail-%d", c)
		for range tailsPer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r channels.Records
				cur := channels.Cursor{Offset: 1}
				for cur.Offset <= perChan {
					res, err := b.Read(ctx, ch, cur, 50, 0, &r)
					if err != nil {
						errs <- err
						return
					}
					now := time.Now().UnixNano()
					for i := range r.Len() {
						rec := r.At(i)
						if want := msg("a", int(cur.Offset)+i); rec.Offset != cur.Offset+uint64(i) || !bytes.Equal(rec.Data, want) {
							errs <- fmt.Errorf("%s: record %d = %q, want %q", ch, rec.Offset, rec.Data, want)
							return
						}
						mu.Lock()
						lat = append(lat, time.Duration(now-rec.Time))
						mu.Unlock()
					}
					cur = res.Next
					if r.Len() == 0 {
						if err := b.Wait(ctx, ch, cur); err != nil {
							errs <- err
							return
						}
					}
				}
			}()
		}
	}
	for i := 1; i <= perChan; i++ {
		for c := range chans {
			appendN(t, a, fmt.Sprintf("tail-%d", c), "a", i, i)
		}
		if i%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("tail latency across nodes, %d channels × %d tails: %s", chans, tailsPer, percentiles(lat))
}
