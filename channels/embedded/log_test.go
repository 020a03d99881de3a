package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
	"github.com/plexus-router/plexus/channels/logtest"
)

func openLog(t testing.TB, cfg embedded.LogConfig) *embedded.Log {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	l, err := embedded.OpenLog(cfg)
	if err != nil {
		t.Fatalf("OpenLog = %v", err)
	}
	return l
}

func TestLogContract(t *testing.T) {
	for _, p := range []embedded.SyncPolicy{embedded.SyncInterval, embedded.SyncAlways, embedded.SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			logtest.Run(t, func(t *testing.T) channels.Log {
				l := openLog(t, embedded.LogConfig{Sync: p})
				return l
			})
		})
	}
}

// TestLogContractSmall runs the contract with tiny segments and cache, so
// reads come from disk and segments roll and get deleted all the time.
func TestLogContractSmall(t *testing.T) {
	logtest.Run(t, func(t *testing.T) channels.Log {
		return openLog(t, embedded.LogConfig{SegmentBytes: 4 << 10, CacheBytes: 1})
	})
}

// msg returns message i of channel ch.
func msg(ch string, i int) []byte {
	return fmt.Appendf(nil, "<134>1 2024-01-01T00:00:00Z host app web.1 - - %s message %d %s", ch, i, bytes.Repeat([]byte("x"), i%13))
}

func appendN(t testing.TB, l channels.Log, ch string, from, n int, durable bool) {
	t.Helper()
	b := &channels.Batch{ChannelID: ch, Time: time.Now().UnixNano()}
	for i := from; i < from+n; i++ {
		b.Add(msg(ch, i))
	}
	var err error
	if durable {
		err = l.AppendDurable(context.Background(), []*channels.Batch{b})
	} else {
		err = l.Append(context.Background(), []*channels.Batch{b})
	}
	if err != nil {
		t.Fatalf("Append = %v", err)
	}
}

// readAll reads ch from offset 1 to the end and checks the messages are
// msg(ch, first...) in order; it returns the result of the first read, the
// first offset returned and how many.
func readAll(t testing.TB, l channels.Log, ch string) (channels.ReadResult, uint64, int) {
	t.Helper()
	ctx := context.Background()
	var r channels.Records
	cur := channels.Cursor{Offset: 1}
	var firstRes channels.ReadResult
	var first uint64
	n := 0
	for i := 0; ; i++ {
		res, err := l.Read(ctx, ch, cur, 100, 0, &r)
		if err != nil {
			t.Fatalf("Read = %v", err)
		}
		if i == 0 {
			firstRes = res
		}
		for k := range r.Len() {
			rec := r.At(k)
			if n == 0 {
				first = rec.Offset
			}
			if want := first + uint64(n); rec.Offset != want {
				t.Fatalf("%s: offset %d, want %d", ch, rec.Offset, want)
			}
			if !bytes.Equal(rec.Data, msg(ch, int(rec.Offset))) {
				t.Fatalf("%s: record %d = %q", ch, rec.Offset, rec.Data)
			}
			n++
		}
		if r.Len() == 0 {
			return firstRes, first, n
		}
		cur = res.Next
	}
}

// TestLogRecoverAfterCrash: everything appended durably is there after a
// crash, in the same epoch, and offsets continue.
func TestLogRecoverAfterCrash(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, embedded.LogConfig{Dir: dir, SegmentBytes: 64 << 10})
	for i := 0; i < 200; i++ {
		appendN(t, l, fmt.Sprint("ch", i%5), i/5*10+1, 10, i%2 == 0)
	}
	appendN(t, l, "ch0", 401, 10, true)
	before := map[string]channels.LogInfo{}
	for i := 0; i < 5; i++ {
		ch := fmt.Sprint("ch", i)
		li, _ := l.Info(context.Background(), ch)
		before[ch] = li
	}
	l.CrashForTest()

	l = openLog(t, embedded.LogConfig{Dir: dir, SegmentBytes: 64 << 10})
	defer l.Close()
	for ch, want := range before {
		li, err := l.Info(context.Background(), ch)
		if err != nil {
			t.Fatal(err)
		}
		if li.Epoch != want.Epoch || li.Next < want.Next {
			t.Fatalf("%s after crash: %+v, before %+v: want same epoch, nothing lost", ch, li, want)
		}
		_, first, n := readAll(t, l, ch)
		if first != 1 || uint64(n) != li.Next-1 {
			t.Fatalf("%s: read %d messages from %d, Info %+v", ch, n, first, li)
		}
	}
	// Offsets continue.
	appendN(t, l, "ch1", 401, 5, true)
	if li, _ := l.Info(context.Background(), "ch1"); li.Next != 406 || li.Epoch != before["ch1"].Epoch {
		t.Fatalf("after append: %+v", li)
	}
}

// TestLogTornTail cuts the last segment at random byte offsets and flips
// bytes in it: recovery keeps every record before the damage and nothing
// after it, and the log keeps working.
func TestLogTornTail(t *testing.T) {
	for round := 0; round < 20; round++ {
		dir := t.TempDir()
		l := openLog(t, embedded.LogConfig{Dir: dir})
		const batches = 50
		sizes := make([]int64, 0, batches)
		for i := 0; i < batches; i++ {
			appendN(t, l, "a", i*3+1, 3, true)
			sizes = append(sizes, segSize(t, dir))
		}
		l.CrashForTest()
		seg := lastSegment(t, dir)
		full := sizes[len(sizes)-1]
		cut := rand.Int64N(full)
		flip := round%2 == 1
		if flip {
			b, _ := os.ReadFile(seg)
			b[cut] ^= 0x40
			os.WriteFile(seg, b, 0o644)
		} else if err := os.Truncate(seg, cut); err != nil {
			t.Fatal(err)
		}
		// Records wholly before the damaged byte survive.
		keep := sort.Search(len(sizes), func(i int) bool { return sizes[i] > cut })
		l = openLog(t, embedded.LogConfig{Dir: dir})
		_, first, n := readAll(t, l, "a")
		if n != keep*3 || n > 0 && first != 1 {
			t.Fatalf("round %d (cut at %d of %d, flip %v): recovered %d messages from %d, want %d", round, cut, full, flip, n, first, keep*3)
		}
		li, _ := l.Info(context.Background(), "a")
		appendN(t, l, "a", keep*3+1, 3, true)
		if li2, _ := l.Info(context.Background(), "a"); n > 0 && (li2.Next != uint64(keep*3+4) || li2.Epoch != li.Epoch) {
			t.Fatalf("round %d: after append %+v, before %+v", round, li2, li)
		}
		l.Close()
		l = openLog(t, embedded.LogConfig{Dir: dir})
		if _, _, n2 := readAll(t, l, "a"); n2 != n+3 {
			t.Fatalf("round %d: after reopen %d messages, want %d", round, n2, n+3)
		}
		l.Close()
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func lastSegment(t testing.TB, dir string) string {
	m := segFiles(t, dir)
	if len(m) == 0 {
		t.Fatal("no segment")
	}
	return m[len(m)-1]
}

func segSize(t testing.TB, dir string) int64 {
	st, err := os.Stat(lastSegment(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestLogDamagedMiddleSegment flips a byte in a sealed segment: only the
// records of that file from the damage on are lost, reported to readers as
// missed with exact counts; everything else is served.
func TestLogDamagedMiddleSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := embedded.LogConfig{Dir: dir, SegmentBytes: 8 << 10, Default: channels.Retention{Count: 100000}}
	l := openLog(t, cfg)
	for i := 0; i < 100; i++ {
		appendN(t, l, "a", i*5+1, 5, false)
	}
	l.Close()
	segs := segFiles(t, dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	victim := segs[1]
	b, _ := os.ReadFile(victim)
	b[len(b)/2] ^= 0xff
	os.WriteFile(victim, b, 0o644)

	l = openLog(t, cfg)
	defer l.Close()
	ctx := context.Background()
	var r channels.Records
	cur := channels.Cursor{Offset: 1}
	var got, missed uint64
	for {
		res, err := l.Read(ctx, "a", cur, 7, 0, &r)
		if err != nil {
			t.Fatal(err)
		}
		missed += res.Missed
		for k := range r.Len() {
			rec := r.At(k)
			if !bytes.Equal(rec.Data, msg("a", int(rec.Offset))) {
				t.Fatalf("record %d = %q", rec.Offset, rec.Data)
			}
			got++
		}
		if r.Len() == 0 && res.Missed == 0 {
			break
		}
		cur = res.Next
	}
	if got+missed != 500 || missed == 0 || missed > 250 {
		t.Fatalf("read %d, missed %d: want 500 in all, a few missed", got, missed)
	}
}

// TestLogDiskFull: a write that finds the disk full stores nothing, Append
// waits until its deadline (ErrLogFull), and when space returns the log
// works again with nothing already stored damaged.
func TestLogDiskFull(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, embedded.LogConfig{Dir: dir})
	defer l.Close()
	appendN(t, l, "a", 1, 10, true)
	var full sync.Mutex
	isFull := true
	l.SetWriteForTest(func(f *os.File, p []byte) (int, error) {
		full.Lock()
		defer full.Unlock()
		if isFull {
			n, _ := f.Write(p[:len(p)/2]) // a partial write, then no space
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.Write(p)
	})
	b := &channels.Batch{ChannelID: "a", Time: time.Now().UnixNano()}
	for i := 11; i <= 20; i++ {
		b.Add(msg("a", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := l.AppendDurable(ctx, []*channels.Batch{b})
	cancel()
	if !errors.Is(err, channels.ErrLogFull) {
		t.Fatalf("AppendDurable on a full disk = %v, want ErrLogFull", err)
	}
	if li, _ := l.Info(context.Background(), "a"); li.Next != 11 {
		t.Fatalf("after the failed append: %+v, want Next 11", li)
	}
	// Space returns while an append waits: it goes through.
	done := make(chan error, 1)
	go func() { done <- l.AppendDurable(context.Background(), []*channels.Batch{b}) }()
	full.Lock()
	isFull = false
	full.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("AppendDurable after space returned = %v", err)
	}
	if _, first, n := readAll(t, l, "a"); first != 1 || n != 20 {
		t.Fatalf("read %d from %d, want 20 from 1", n, first)
	}
	l.Close()
	l2 := openLog(t, embedded.LogConfig{Dir: dir})
	defer l2.Close()
	if _, first, n := readAll(t, l2, "a"); first != 1 || n != 20 {
		t.Fatalf("after reopen: read %d from %d, want 20 from 1", n, first)
	}
}

// TestLogCacheBound: with a cache far smaller than what is retained, the
// cache stays within its bound and old records are read from disk.
func TestLogCacheBound(t *testing.T) {
	const cacheBytes = 256 << 10
	l := openLog(t, embedded.LogConfig{CacheBytes: cacheBytes, SegmentBytes: 1 << 20, Default: channels.Retention{Count: 1 << 30}})
	defer l.Close()
	for i := 0; i < 2000; i++ {
		appendN(t, l, fmt.Sprint("c", i%3), i/3*10+1, 10, false)
	}
	l.CommitNow()
	st := l.Stats()
	if st.CacheBytes > cacheBytes {
		t.Fatalf("cache holds %d bytes, bound %d", st.CacheBytes, cacheBytes)
	}
	if st.DiskBytes < 4*cacheBytes {
		t.Fatalf("disk holds only %d bytes", st.DiskBytes)
	}
	for i := 0; i < 3; i++ {
		if _, first, n := readAll(t, l, fmt.Sprint("c", i)); first != 1 || n < 6660 {
			t.Fatalf("c%d: read %d from %d", i, n, first)
		}
	}
}

// TestLogSegmentsDeleted: segment files that retention emptied are
// deleted, so disk use follows retention.
func TestLogSegmentsDeleted(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, embedded.LogConfig{Dir: dir, SegmentBytes: 16 << 10, Default: channels.Retention{Count: 50}})
	defer l.Close()
	for i := 0; i < 1000; i++ {
		appendN(t, l, "a", i*5+1, 5, false)
	}
	l.CommitNow()
	waitFor(t, "old segments deleted", func() bool {
		l.SweepNow()
		return len(segFiles(t, dir)) <= 3
	})
	if _, first, n := readAll(t, l, "a"); n < 50 || first+uint64(n) != 5001 {
		t.Fatalf("read %d from %d", n, first)
	}
}

// TestLogMaxDisk: past the disk bound the oldest segments go, and a
// reader is told exactly what it missed.
func TestLogMaxDisk(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, embedded.LogConfig{Dir: dir, SegmentBytes: 16 << 10, MaxDisk: 64 << 10, Default: channels.Retention{Count: 1 << 30}})
	defer l.Close()
	for i := 0; i < 1000; i++ {
		appendN(t, l, "a", i*5+1, 5, false)
	}
	l.CommitNow()
	l.SweepNow()
	if st := l.Stats(); st.DiskBytes > 64<<10+16<<10 {
		t.Fatalf("disk %d bytes in %d segments (%d unsynced), bound %d", st.DiskBytes, st.Segments, l.Unsynced(), 64<<10)
	}
	res, first, n := readAll(t, l, "a")
	if res.Missed == 0 || uint64(n)+res.Missed != 5000 || first != 1+res.Missed {
		t.Fatalf("read %d from %d, missed %d: want 5000 in all", n, first, res.Missed)
	}
}

// TestLogDeleteSurvivesRestart: a deleted channel stays deleted after a
// crash, even while older segments still hold its records.
func TestLogDeleteSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, embedded.LogConfig{Dir: dir})
	appendN(t, l, "gone", 1, 10, true)
	appendN(t, l, "kept", 1, 10, true)
	old, _ := l.Info(context.Background(), "gone")
	if err := l.Delete(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	l.CrashForTest()
	l = openLog(t, embedded.LogConfig{Dir: dir})
	if li, _ := l.Info(context.Background(), "gone"); li.Next != 1 || li.Epoch != "" {
		t.Fatalf("deleted channel after crash: %+v", li)
	}
	appendN(t, l, "gone", 1, 3, true)
	if li, _ := l.Info(context.Background(), "gone"); li.Next != 4 || li.Epoch == old.Epoch {
		t.Fatalf("recreated channel: %+v (old epoch %s)", li, old.Epoch)
	}
	l.CrashForTest()
	l = openLog(t, embedded.LogConfig{Dir: dir})
	defer l.Close()
	if _, first, n := readAll(t, l, "gone"); first != 1 || n != 3 {
		t.Fatalf("recreated channel after crash: %d from %d", n, first)
	}
	if _, _, n := readAll(t, l, "kept"); n != 10 {
		t.Fatalf("kept: %d messages", n)
	}
}

// TestLogRetentionPersists: a channel's own retention holds after a
// restart, before anyone sets it again.
func TestLogRetentionPersists(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, embedded.LogConfig{Dir: dir, Default: channels.Retention{Count: 10}})
	l.SetRetention("big", channels.Retention{Count: 1000})
	appendN(t, l, "big", 1, 500, true)
	l.Close()
	l = openLog(t, embedded.LogConfig{Dir: dir, Default: channels.Retention{Count: 10}})
	defer l.Close()
	appendN(t, l, "big", 501, 1, true)
	if li, _ := l.Info(context.Background(), "big"); li.First != 1 || li.Next != 502 {
		t.Fatalf("after restart and append: %+v, want all 501 kept", li)
	}
}

// TestLogReadersSeeOnlyCommitted: what is appended but not committed is
// not shown; a waiting reader gets it committed at once.
func TestLogReadersSeeOnlyCommitted(t *testing.T) {
	l := openLog(t, embedded.LogConfig{SyncInterval: time.Hour})
	defer l.Close()
	appendN(t, l, "a", 1, 5, true)
	appendN(t, l, "a", 6, 5, false)
	// A reader that keeps up gets what is committed, without waiting.
	var r channels.Records
	res, err := l.Read(context.Background(), "a", channels.Cursor{Offset: 2}, 0, 0, &r)
	if err != nil || r.Len() != 4 || res.Next.Offset != 6 {
		t.Fatalf("Read(2) before the commit = %+v, %d records, %v; want 2..5", res, r.Len(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Wait(ctx, "a", channels.Cursor{Offset: 6}); err != nil {
		t.Fatalf("Wait = %v (the wait should start a commit)", err)
	}
	if res, _ := l.Read(context.Background(), "a", res.Next, 0, 0, &r); r.Len() != 5 || res.Next.Offset != 11 {
		t.Fatalf("after Wait: %+v, %d records", res, r.Len())
	}
	// A reader already waiting gets later appends committed at once.
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, "a", channels.Cursor{Offset: 11}) }()
	waitFor(t, "waiter registered", func() bool { return l.Waiters("a") == 1 })
	appendN(t, l, "a", 11, 1, false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLogWaiterLeavesNoLog(t *testing.T) {
	l := openLog(t, embedded.LogConfig{})
	defer l.Close()
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		l.Wait(ctx, fmt.Sprint("ch", i), channels.Cursor{Offset: 1})
		cancel()
	}
	if st := l.Stats(); st.Channels != 0 {
		t.Fatalf("Stats after waits = %+v, want no channels", st)
	}
}

func TestLogAppendAllocs(t *testing.T) {
	l := openLog(t, embedded.LogConfig{Default: channels.Retention{Count: 5000}, SyncInterval: time.Hour})
	defer l.Close()
	batches := make([]*channels.Batch, 2)
	for i := range batches {
		b := &channels.Batch{ChannelID: fmt.Sprint("ch", i), Time: 1}
		for j := 0; j < 64; j++ {
			b.Add(bytes.Repeat([]byte("m"), 200))
		}
		batches[i] = b
	}
	ctx := context.Background()
	for i := 0; i < 2000; i++ { // warm up: index slices reach their size
		l.Append(ctx, batches)
		l.CommitNow()
	}
	allocs := testing.AllocsPerRun(200, func() {
		if err := l.Append(ctx, batches); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("Append allocates %v times per call, want 0", allocs)
	}
}

func benchBatches(n, size int) []*channels.Batch {
	b := &channels.Batch{ChannelID: "bench", Time: 1}
	for j := 0; j < n; j++ {
		b.Add(bytes.Repeat([]byte("m"), size))
	}
	return []*channels.Batch{b}
}

// BenchmarkLogAppend: 200-byte messages in batches of 100, default policy.
func BenchmarkLogAppend(b *testing.B) {
	l := openLog(b, embedded.LogConfig{})
	defer l.Close()
	batches := benchBatches(100, 200)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(100 * 200)
	for b.Loop() {
		if err := l.Append(ctx, batches); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkLogAppendDurable: 4 clients posting 500-message batches of
// 200-byte messages, each waiting for its commit (POST /logs).
func BenchmarkLogAppendDurable(b *testing.B) {
	l := openLog(b, embedded.LogConfig{})
	defer l.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(500 * 200)
	b.SetParallelism(2) // 2 × GOMAXPROCS(2) = 4 clients
	b.RunParallel(func(pb *testing.PB) {
		batches := benchBatches(500, 200)
		for pb.Next() {
			if err := l.AppendDurable(ctx, batches); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkLogRead reads 100-message pages from the cache and from disk.
func BenchmarkLogRead(b *testing.B) {
	for _, where := range []string{"cache", "disk"} {
		b.Run("from="+where, func(b *testing.B) {
			cfg := embedded.LogConfig{Default: channels.Retention{Count: 1 << 30}}
			if where == "disk" {
				cfg.CacheBytes = 1
			}
			l := openLog(b, cfg)
			defer l.Close()
			batches := benchBatches(100, 200)
			for i := 0; i < 1000; i++ {
				l.Append(context.Background(), batches)
			}
			l.CommitNow()
			var r channels.Records
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(100 * 200)
			off := uint64(1)
			for b.Loop() {
				res, err := l.Read(ctx, "bench", channels.Cursor{Offset: off}, 100, 0, &r)
				if err != nil || r.Len() != 100 {
					b.Fatalf("Read = %v, %d records", err, r.Len())
				}
				off = res.Next.Offset
				if off > 99000 {
					off = 1
				}
			}
		})
	}
}

// TestLogPreallocatesSegments: segment files get their blocks when they
// are created (where the filesystem can), without changing their size,
// and a log with preallocated segments recovers what was written.
func TestLogPreallocatesSegments(t *testing.T) {
	dir := t.TempDir()
	const seg = 1 << 20
	// Can this filesystem preallocate at all?
	probe, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	canPrealloc := unix.Fallocate(int(probe.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, seg) == nil
	probe.Close()
	os.Remove(probe.Name())

	l := openLog(t, embedded.LogConfig{Dir: dir, SegmentBytes: seg})
	appendN(t, l, "a", 1, 10, true)
	files, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(files) != 1 {
		t.Fatalf("segment files: %v", files)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(files[0], &st); err != nil {
		t.Fatal(err)
	}
	if st.Size >= seg {
		t.Fatalf("segment size %d: preallocation changed it", st.Size)
	}
	if canPrealloc && st.Blocks*512 < seg {
		t.Fatalf("segment of %d bytes has %d bytes of blocks, want at least %d preallocated", st.Size, st.Blocks*512, seg)
	}
	l.CrashForTest()
	l = openLog(t, embedded.LogConfig{Dir: dir, SegmentBytes: seg})
	defer l.Close()
	appendN(t, l, "a", 11, 10, true)
	if _, first, n := readAll(t, l, "a"); first != 1 || n != 20 {
		t.Fatalf("after a crash: %d messages from %d, want 20 from 1", n, first)
	}
}

// TestLogRemovesOnlyDeadSegmentsUnderLoad: segments roll and die fast
// (small files, 5 messages retained) while the janitor removes dead ones
// and commits run: the active segment and rolled ones not yet synced are
// never removed (a removed one fails every later sync, and the log stalls),
// so a durable append still completes at the end.
func TestLogRemovesOnlyDeadSegmentsUnderLoad(t *testing.T) {
	l := openLog(t, embedded.LogConfig{Dir: t.TempDir(), SegmentBytes: 4096, Default: channels.Retention{Count: 5}})
	defer l.Close()
	var appenders, janitors sync.WaitGroup
	done := make(chan struct{})
	for _, f := range []func(){l.SweepNow, l.CommitNow} {
		janitors.Add(1)
		go func() {
			defer janitors.Done()
			for {
				select {
				case <-done:
					return
				default:
					f()
				}
			}
		}()
	}
	for w := 0; w < 2; w++ {
		appenders.Add(1)
		go func() {
			defer appenders.Done()
			ch := fmt.Sprint("c", w)
			for i := 1; i <= 40000; i++ {
				appendN(t, l, ch, i, 1, false)
			}
		}()
	}
	appenders.Wait()
	close(done)
	janitors.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := &channels.Batch{ChannelID: "c0", Time: time.Now().UnixNano()}
	b.Add(msg("c0", 40001))
	if err := l.AppendDurable(ctx, []*channels.Batch{b}); err != nil {
		t.Fatalf("durable append after the load: %v", err)
	}
	if _, first, n := readAll(t, l, "c0"); n != 5 || first != 39997 {
		t.Fatalf("c0 holds %d messages from %d, want the last 5 (from 3997)", n, first)
	}
}
