package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
	"github.com/plexus-router/plexus/channels/logtest"
)

func openMemLog(t testing.TB, cfg embedded.LogConfig) *embedded.Log {
	t.Helper()
	l, err := embedded.OpenLog(cfg)
	if err != nil {
		t.Fatalf("OpenLog = %v", err)
	}
	return l
}

func TestMemLogContract(t *testing.T) {
	logtest.Run(t, func(t *testing.T) channels.Log {
		return openMemLog(t, embedded.LogConfig{})
	})
}

func TestMemLogContractPersistent(t *testing.T) {
	logtest.Run(t, func(t *testing.T) channels.Log {
		return openMemLog(t, embedded.LogConfig{Dir: t.TempDir()})
	})
}

// msg returns message i of channel ch.
func msg(ch string, i int) []byte {
	return fmt.Appendf(nil, "<134>1 2024-01-01T00:00:00Z host app web.1 - - %s message %d", ch, i)
}

func appendN(t testing.TB, l channels.Log, ch string, from, n int, tm int64) {
	t.Helper()
	b := &channels.Batch{ChannelID: ch, Time: tm}
	for i := from; i < from+n; i++ {
		b.Add(msg(ch, i))
	}
	if err := l.Append(context.Background(), []*channels.Batch{b}); err != nil {
		t.Fatalf("Append = %v", err)
	}
}

type dump struct {
	info    channels.LogInfo
	records []channels.Record
}

func dumpLog(t *testing.T, l channels.Log, ch string) dump {
	t.Helper()
	ctx := context.Background()
	info, err := l.Info(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	var r channels.Records
	if _, err := l.Read(ctx, ch, channels.Cursor{}, 0, 0, &r); err != nil {
		t.Fatal(err)
	}
	d := dump{info: info}
	for i := range r.Len() {
		rec := r.At(i)
		rec.Data = bytes.Clone(rec.Data)
		d.records = append(d.records, rec)
	}
	return d
}

func sameRecords(a, b []channels.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Offset != b[i].Offset || a[i].Time != b[i].Time || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func TestMemLogPersist(t *testing.T) {
	dir := t.TempDir()
	l := openMemLog(t, embedded.LogConfig{Dir: dir})
	now := time.Now().UnixNano()
	appendN(t, l, "quiet", 1, 3, now)
	l.SetRetention("busy", channels.Retention{Count: 100})
	for i := 0; i < 50; i++ {
		appendN(t, l, "busy", 1+i*20, 20, now+int64(i))
	}
	big := &channels.Batch{ChannelID: "big", Time: now}
	big.Add(bytes.Repeat([]byte("b"), 3<<20)) // larger than any segment
	big.Add([]byte("small"))
	if err := l.Append(context.Background(), []*channels.Batch{big}); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(context.Background(), "quiet"); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "quiet", 1, 2, now)
	l.SetRetention("empty", channels.Retention{Count: 5}) // a log without messages

	ids := []string{"quiet", "busy", "big", "empty"}
	before := map[string]dump{}
	for _, id := range ids {
		before[id] = dumpLog(t, l, id)
	}
	if before["busy"].info.First == 1 {
		t.Fatalf("busy channel did not evict: %+v", before["busy"].info)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	l = openMemLog(t, embedded.LogConfig{Dir: dir})
	if err := l.RestoreErr(); err != nil {
		t.Fatalf("RestoreErr = %v", err)
	}
	for _, id := range ids {
		after := dumpLog(t, l, id)
		if after.info != before[id].info || !sameRecords(after.records, before[id].records) {
			t.Fatalf("%s after restore: %+v (%d records), want %+v (%d records)", id, after.info, len(after.records), before[id].info, len(before[id].records))
		}
	}
	// The restored log goes on in the same epoch.
	appendN(t, l, "busy", 1001, 1, now)
	if info, _ := l.Info(context.Background(), "busy"); info.Next != 1002 || info.Epoch != before["busy"].info.Epoch {
		t.Fatalf("Info after restore and append = %+v", info)
	}
	if _, err := os.Stat(filepath.Join(dir, "log.snapshot")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot still there after restore: %v", err)
	}

	// A snapshot on demand, then a "crash" (no Close): the next start
	// restores the messages in new epochs.
	if err := l.Snapshot(); err != nil {
		t.Fatalf("Snapshot = %v", err)
	}
	busy := dumpLog(t, l, "busy")
	l2 := openMemLog(t, embedded.LogConfig{Dir: dir})
	got := dumpLog(t, l2, "busy")
	if !sameRecords(got.records, busy.records) || got.info.Epoch == busy.info.Epoch || got.info.Next != busy.info.Next {
		t.Fatalf("after Snapshot and restart: %+v, want the records of %+v in a new epoch", got.info, busy.info)
	}
	l2.Close()
	l.Close() // overwrites l2's snapshot: fine, it is the newer
	// Without a snapshot (a crash after restore), the log starts empty.
	os.Remove(filepath.Join(dir, "log.snapshot"))
	l3 := openMemLog(t, embedded.LogConfig{Dir: dir})
	defer l3.Close()
	if info, _ := l3.Info(context.Background(), "busy"); info != (channels.LogInfo{First: 1, Next: 1}) {
		t.Fatalf("Info without a snapshot = %+v", info)
	}
}

func TestMemLogCorruptSnapshot(t *testing.T) {
	good := func(t *testing.T) []byte {
		dir := t.TempDir()
		l := openMemLog(t, embedded.LogConfig{Dir: dir})
		appendN(t, l, "a", 1, 10, 1)
		appendN(t, l, "b", 1, 10, 1)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "log.snapshot"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}(t)
	flip := bytes.Clone(good)
	flip[len(flip)/2] ^= 0x20
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a snapshot at all")},
		{"truncated", good[:len(good)-7]},
		{"bit flip", flip},
		{"trailing", append(bytes.Clone(good), 0)},
		{"bad version", append([]byte("PLXLOG\x09"), good[7:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "log.snapshot")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			l := openMemLog(t, embedded.LogConfig{Dir: dir})
			defer l.Close()
			if l.RestoreErr() == nil {
				t.Fatalf("RestoreErr = nil, want an error")
			}
			if st := l.Stats(); st.Channels != 0 || st.Messages != 0 {
				t.Fatalf("Stats after a corrupt snapshot = %+v, want empty", st)
			}
			if _, err := os.Stat(path + ".corrupt"); err != nil {
				t.Fatalf("corrupt snapshot not moved aside: %v", err)
			}
			appendN(t, l, "a", 1, 1, 1) // still works
		})
	}
	t.Run("good", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "log.snapshot"), good, 0o600)
		l := openMemLog(t, embedded.LogConfig{Dir: dir})
		defer l.Close()
		if l.RestoreErr() != nil || l.Stats().Messages != 20 {
			t.Fatalf("RestoreErr = %v, Stats = %+v", l.RestoreErr(), l.Stats())
		}
	})
}

// TestMemLogAgeKeep drives age retention with the Now hook: exactly the
// messages older than Age go, except the newest Keep.
func TestMemLogAgeKeep(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	l := openMemLog(t, embedded.LogConfig{Now: func() time.Time { return time.Unix(0, now.Load()) }})
	defer l.Close()
	l.SetRetention("a", channels.Retention{Age: time.Minute, Keep: 5})
	t0 := now.Load()
	for i := 0; i < 10; i++ {
		appendN(t, l, "a", 1+i*3, 3, t0+int64(i)*int64(time.Second)) // offsets 3i+1..3i+3 at t0+i s
	}
	check := func(wantFirst uint64) {
		t.Helper()
		l.SweepNow()
		info, _ := l.Info(context.Background(), "a")
		if info.First != wantFirst || info.Next != 31 {
			t.Fatalf("at +%v: Info = %+v, want First %d", time.Duration(now.Load()-t0), info, wantFirst)
		}
	}
	check(1)
	now.Store(t0 + int64(time.Minute) + int64(2500*time.Millisecond)) // batches 0..2 are over a minute old
	check(10)
	now.Store(t0 + int64(time.Hour)) // all old: the newest 5 stay
	check(26)
	var r channels.Records
	res, err := l.Read(context.Background(), "a", channels.Cursor{Offset: 4}, 0, 0, &r)
	if err != nil || res.Missed != 22 || r.Len() != 5 || res.MissedSince.UnixNano() != t0+int64(time.Second) {
		t.Fatalf("Read(4) = %+v, %v with %d records, want Missed 22 since t0+1s", res, err, r.Len())
	}
}

func TestMemLogCloseWakesWaiters(t *testing.T) {
	l := openMemLog(t, embedded.LogConfig{})
	done := make(chan error, 1)
	go func() { done <- l.Wait(context.Background(), "a", 1) }()
	time.Sleep(20 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, channels.ErrClosed) {
			t.Fatalf("Wait after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after Close")
	}
	if err := l.Wait(context.Background(), "a", 1); !errors.Is(err, channels.ErrClosed) {
		t.Fatalf("Wait after Close = %v, want ErrClosed", err)
	}
}

// TestMemLogWaiterLeavesNoLog: waiting on channels that never get a
// message does not leave logs behind.
func TestMemLogWaiterLeavesNoLog(t *testing.T) {
	l := openMemLog(t, embedded.LogConfig{})
	defer l.Close()
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		l.Wait(ctx, fmt.Sprint("ch", i), 1)
		cancel()
	}
	if st := l.Stats(); st.Channels != 0 {
		t.Fatalf("Stats after waits = %+v, want no channels", st)
	}
}

func TestMemLogAppendAllocs(t *testing.T) {
	l := openMemLog(t, embedded.LogConfig{Default: channels.Retention{Count: 5000}})
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
	for i := 0; i < 2000; i++ { // warm up: segments reach their size and recycle
		l.Append(ctx, batches)
	}
	allocs := testing.AllocsPerRun(500, func() {
		if err := l.Append(ctx, batches); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Append allocates %v times per call, want 0", allocs)
	}
}

// TestMemLogMemoryBound pushes 200 MB through a 1 MiB Bytes retention
// while a reader lags: memory stays bounded.
func TestMemLogMemoryBound(t *testing.T) {
	const limit = 1 << 20
	l := openMemLog(t, embedded.LogConfig{Default: channels.Retention{Bytes: limit}})
	defer l.Close()
	b := &channels.Batch{ChannelID: "a", Time: 1}
	for j := 0; j < 64; j++ {
		b.Add(bytes.Repeat([]byte("m"), 1000+j))
	}
	ctx := context.Background()
	var r channels.Records
	var maxSeg int64
	for sent := 0; sent < 200<<20; sent += b.Bytes() {
		if err := l.Append(ctx, []*channels.Batch{b}); err != nil {
			t.Fatal(err)
		}
		st := l.Stats()
		if st.Bytes > limit {
			t.Fatalf("Stats = %+v: retained bytes over the bound %d", st, limit)
		}
		maxSeg = max(maxSeg, st.SegmentBytes)
		if sent%(10<<20) < b.Bytes() {
			l.Read(ctx, "a", channels.Cursor{Offset: 1}, 10, 0, &r) // a reader far behind
		}
	}
	st := l.Stats()
	if maxSeg > 2*limit || st.PoolBytes > 2*limit {
		t.Fatalf("segments grew to %d bytes (pool %d) for a %d byte retention", maxSeg, st.PoolBytes, limit)
	}
	t.Logf("max segment bytes %d, final %+v", maxSeg, st)
}

func TestMemLogSizeClasses(t *testing.T) {
	l := openMemLog(t, embedded.LogConfig{Default: channels.Retention{Count: 100000}})
	defer l.Close()
	// 1000 quiet channels cost one small segment each.
	for i := 0; i < 1000; i++ {
		appendN(t, l, fmt.Sprint("quiet", i), 1, 1, 1)
	}
	st := l.Stats()
	if st.SegmentBytes != 1000*16<<10 {
		t.Fatalf("1000 quiet channels: %+v", st)
	}
	// A busy channel (all messages in the same second) grows its segments.
	for i := 0; i < 1000; i++ {
		appendN(t, l, "busy", 1+i*64, 64, 1)
	}
	before := st.SegmentBytes
	st = l.Stats()
	busy := st.SegmentBytes - before
	if n := st.Segments - 1000; n > 20 {
		t.Fatalf("busy channel uses %d segments (%d bytes), want few large ones", n, busy)
	}
	// An oversize message gets a segment of its own size.
	huge := bytes.Repeat([]byte("h"), 3<<20)
	b := &channels.Batch{ChannelID: "huge", Time: 1}
	b.Add(huge)
	b.Add([]byte("after"))
	l.Append(context.Background(), []*channels.Batch{b})
	var r channels.Records
	l.Read(context.Background(), "huge", channels.Cursor{}, 0, 0, &r)
	if r.Len() != 2 || !bytes.Equal(r.At(0).Data, huge) || string(r.At(1).Data) != "after" {
		t.Fatalf("Read(huge) = %d records", r.Len())
	}
}

func BenchmarkMemLogAppend(b *testing.B) {
	l := openMemLog(b, embedded.LogConfig{})
	defer l.Close()
	batch := &channels.Batch{ChannelID: "a", Time: 1}
	for j := 0; j < 64; j++ {
		batch.Add(bytes.Repeat([]byte("m"), 200))
	}
	batches := []*channels.Batch{batch}
	ctx := context.Background()
	b.SetBytes(int64(batch.Bytes()))
	b.ReportAllocs()
	for b.Loop() {
		l.Append(ctx, batches)
	}
}

func BenchmarkMemLogAppendParallel(b *testing.B) {
	l := openMemLog(b, embedded.LogConfig{})
	defer l.Close()
	var id atomic.Int32
	b.SetBytes(64 * 200)
	b.ReportAllocs()
	b.SetParallelism(max(1, 4/runtime.GOMAXPROCS(0))) // about 4 goroutines
	b.RunParallel(func(pb *testing.PB) {
		batch := &channels.Batch{ChannelID: fmt.Sprint("ch", id.Add(1)%4), Time: 1}
		for j := 0; j < 64; j++ {
			batch.Add(bytes.Repeat([]byte("m"), 200))
		}
		batches := []*channels.Batch{batch}
		ctx := context.Background()
		for pb.Next() {
			l.Append(ctx, batches)
		}
	})
}

func BenchmarkMemLogRead(b *testing.B) {
	l := openMemLog(b, embedded.LogConfig{})
	defer l.Close()
	batch := &channels.Batch{ChannelID: "a", Time: 1}
	for j := 0; j < 64; j++ {
		batch.Add(bytes.Repeat([]byte("m"), 200))
	}
	ctx := context.Background()
	for i := 0; i < 1500/64+1; i++ {
		l.Append(ctx, []*channels.Batch{batch})
	}
	info, _ := l.Info(ctx, "a")
	var r channels.Records
	b.ReportAllocs()
	for b.Loop() {
		l.Read(ctx, "a", channels.Cursor{Offset: info.Next - 1000}, 100, 0, &r)
	}
}

// FuzzMemLogSnapshot feeds arbitrary snapshot files to OpenLog: it must
// not fail or panic, and what it restores must survive another round trip.
func FuzzMemLogSnapshot(f *testing.F) {
	dir := f.TempDir()
	l, err := embedded.OpenLog(embedded.LogConfig{Dir: dir})
	if err != nil {
		f.Fatal(err)
	}
	appendN(f, l, "a", 1, 3, 5)
	appendN(f, l, "b", 1, 1, 7)
	l.Close()
	good, err := os.ReadFile(filepath.Join(dir, "log.snapshot"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("PLXLOG\x01\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "log.snapshot")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := embedded.OpenLog(embedded.LogConfig{Dir: dir})
		if err != nil {
			t.Fatalf("OpenLog = %v", err)
		}
		if l.RestoreErr() != nil {
			l.Close()
			return
		}
		st := l.Stats()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = embedded.OpenLog(embedded.LogConfig{Dir: dir})
		if err != nil || l.RestoreErr() != nil {
			t.Fatalf("reopen = %v, %v", err, l.RestoreErr())
		}
		defer l.Close()
		if st2 := l.Stats(); st2.Messages != st.Messages || st2.Bytes != st.Bytes {
			t.Fatalf("round trip: %+v, want %+v", st2, st)
		}
	})
}
