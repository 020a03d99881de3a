package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/logtest"
	"github.com/plexus-router/plexus/test/redistest"
)

// crash stops l as kill -9 would stop its process: nothing more reaches
// Redis, spool records not yet handed to a file are lost, files are not
// fsynced (what was written survives: the test process keeps the page
// cache, as the OS does for a killed process).
func crash(l *Log) { l.shutdown(true) }

// spoolConfig is a config with a spool in dir and short write timeouts.
func spoolConfig(dir string) LogConfig {
	return LogConfig{
		SpoolDir:          dir,
		WriteTimeout:      200 * time.Millisecond,
		Default:           channels.Retention{Count: 1 << 20},
		SpoolSyncInterval: 20 * time.Millisecond,
	}
}

// waitSpooled waits until every record admitted to l is in a spool file.
func waitSpooled(t testing.TB, l *Log) {
	t.Helper()
	within(t, 10*time.Second, "admitted records handed to the spool files", func() bool {
		for _, s := range l.shards {
			if s.spool.unwritten() {
				return false
			}
		}
		return true
	})
}

func appendDurable(t testing.TB, l *Log, ch, node string, from, to int) {
	t.Helper()
	b := &channels.Batch{ChannelID: ch}
	for i := from; i <= to; i++ {
		b.Add(msg(node, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.AppendDurable(ctx, []*channels.Batch{b}); err != nil {
		t.Fatalf("AppendDurable(%s %d..%d) = %v", node, from, to, err)
	}
}

// checkExactly reads ch and wants messages from..to of node, once each, in
// order, at offsets 1, 2, ...
func checkExactly(t testing.TB, l *Log, ch, node string, from, to int) {
	t.Helper()
	_, msgs, offs := readAll(t, l, ch, channels.Cursor{})
	if len(msgs) != to-from+1 {
		first, last := []byte(nil), []byte(nil)
		if len(msgs) > 0 {
			first, last = msgs[0], msgs[len(msgs)-1]
		}
		t.Fatalf("channel %s: read %d messages (%q .. %q), want %d: %s %d..%d", ch, len(msgs), first, last, to-from+1, node, from, to)
	}
	for i, m := range msgs {
		if want := msg(node, from+i); !bytes.Equal(m, want) || offs[i] != uint64(i+1) {
			t.Fatalf("channel %s: record %d at offset %d = %q, want %q at %d", ch, i, offs[i], m, want, i+1)
		}
	}
}

// The contract suite with a spool.
func TestLogContractSpool(t *testing.T) {
	srv := redistest.Start(t)
	logtest.Run(t, func(t *testing.T) channels.Log {
		return openTestLog(t, LogConfig{SpoolDir: t.TempDir(), MaxEntryMessages: 3}, srv)
	})
}

// TestSpoolCrashDuringOutage: the shard stops answering; appends go on
// (AppendDurable returns once they are fsynced in the spool); write rounds
// time out and are sent again, waiting in the paused server's sockets.
// The node is killed, the shard resumes (executing those rounds), and a
// new Log on the same spool writes what the old one accepted: every
// message is in Redis once, in order, although the new Log cuts entries
// differently from the old one.
func TestSpoolCrashDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	cfg := spoolConfig(dir)
	cfg.MaxEntryMessages = 10
	cfg.SpoolSegmentBytes = 16 << 10 // several segments
	l := openTestLog(t, cfg, srv)
	chans := []string{"outage-a", "outage-b", "outage-c"}
	for _, ch := range chans {
		appendN(t, l, ch, "a", 1, 100)
	}
	flushLog(t, l)

	srv.Pause(t)
	for i := 101; i <= 1000; i += 10 {
		for _, ch := range chans {
			appendDurable(t, l, ch, "a", i, i+9)
		}
	}
	within(t, 30*time.Second, "a write retried while the shard is paused", func() bool {
		return l.Stats()[0].WriteErrors >= 2
	})
	if l.Healthy() {
		t.Fatal("healthy while the shard is paused")
	}
	if st := l.Stats()[0]; st.SpoolBytes < st.BufferedBytes {
		t.Fatalf("spool holds %d bytes, less than the %d buffered", st.SpoolBytes, st.BufferedBytes)
	}
	crash(l)
	srv.Resume(t)

	cfg.MaxEntryMessages = 7 // entries cut differently from the old Log's
	l2 := openTestLog(t, cfg, srv)
	if l2.Healthy() {
		t.Fatal("healthy before the replayed messages are written")
	}
	flushLog(t, l2)
	within(t, 20*time.Second, "healthy once the replay is written", l2.Healthy)
	for _, ch := range chans {
		checkExactly(t, l2, ch, "a", 1, 1000)
	}
	// Every old segment is gone once written.
	within(t, 10*time.Second, "old spool segments removed", func() bool {
		return countSegments(t, dir) == 1
	})
}

func countSegments(t testing.TB, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "shard-*", "*"+spoolExt))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestSpoolCrashMidRound: Redis is healthy; the node is killed after the
// first entry of a write round landed and before the rest did. The new
// Log skips what landed (whole entries, and the first messages of an
// entry cut differently) and writes the rest once.
func TestSpoolCrashMidRound(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	cfg := spoolConfig(dir)
	cfg.MaxEntryMessages = 10
	cfg.FlushInterval = 50 * time.Millisecond // one round for all the appends below
	l := openTestLog(t, cfg, srv)
	crashed := make(chan struct{})
	h := &splitRound{cut: true, between: func(ctx context.Context) error {
		// The first entry is applied; the node dies before the rest.
		deadline := time.Now().Add(10 * time.Second)
		for l.shards[0].spool.unwritten() {
			if time.Now().After(deadline) {
				return errors.New("records not handed to the spool")
			}
			time.Sleep(time.Millisecond)
		}
		go func() {
			crash(l)
			close(crashed)
		}()
		select {
		case <-l.stop:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("crash did not stop the log")
		}
	}}
	l.shards[0].client.AddHook(h)
	appendN(t, l, "mid-a", "a", 1, 25)
	appendN(t, l, "mid-b", "a", 1, 25)
	select {
	case <-crashed:
	case <-time.After(20 * time.Second):
		t.Fatal("no crash: the write round was not split")
	}
	h.check(t)

	cfg.MaxEntryMessages = 7
	cfg.FlushInterval = 0
	l2 := openTestLog(t, cfg, srv)
	flushLog(t, l2)
	checkExactly(t, l2, "mid-a", "a", 1, 25)
	checkExactly(t, l2, "mid-b", "a", 1, 25)
}

// TestSpoolCrashUnderLoad: appenders on several channels, the node killed
// at random moments while Redis is healthy (rounds in flight are cut off
// as in a killed process, and stay on the wire), then restarted on the same
// spool (with entries cut differently): every message handed to the spool
// is in Redis once, in order. Messages admitted after the last write to
// the spool file may be lost (the process died before writing them), so
// the appenders stop and the records reach the file before the kill.
func TestSpoolCrashUnderLoad(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	next := map[string]int{} // next message number per channel
	var chans []string
	for i := range 6 {
		chans = append(chans, fmt.Sprintf("load-%d", i))
		next[chans[i]] = 1
	}
	for round := range 6 {
		cfg := spoolConfig(dir)
		cfg.MaxEntryMessages = 3 + round*5
		cfg.SpoolSegmentBytes = 32 << 10
		l := openTestLog(t, cfg, a, b)
		var mu sync.Mutex
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for {
					select {
					case <-stop:
						return
					default:
					}
					// One writer per channel pair keeps each channel's
					// order known.
					ch := chans[2*w+r.IntN(2)]
					n := 1 + r.IntN(40)
					mu.Lock()
					from := next[ch]
					next[ch] += n
					mu.Unlock()
					bt := &channels.Batch{ChannelID: ch}
					for i := from; i < from+n; i++ {
						bt.Add(msg("a", i))
					}
					if err := l.Append(context.Background(), []*channels.Batch{bt}); err != nil {
						t.Errorf("Append = %v", err)
						return
					}
				}
			}()
		}
		// A random moment: after a random number of messages reached Redis.
		target := int64(100 + rng.IntN(5000))
		within(t, 20*time.Second, "appends written", func() bool {
			var n int64
			for _, st := range l.Stats() {
				n += st.Written
			}
			return n >= target
		})
		close(stop)
		wg.Wait()
		waitSpooled(t, l)
		crash(l)
	}
	l := openTestLog(t, spoolConfig(dir), a, b)
	flushLog(t, l)
	for _, ch := range chans {
		checkExactly(t, l, ch, "a", 1, next[ch]-1)
	}
}

// TestSpoolTornTail: a crash left a segment whose last record is cut off;
// the new Log writes every record before it.
func TestSpoolTornTail(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	cfg := spoolConfig(dir)
	l := openTestLog(t, cfg, srv)
	srv.Stop(t)
	for i := 1; i <= 50; i++ {
		appendDurable(t, l, "torn", "a", i, i)
	}
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
	checkExactly(t, l2, "torn", "a", 1, 49)
}

// TestSpoolFull: with the shard down, appends fill the spool (its bound
// below the memory buffer's) and then fail with ErrLogFull once their
// context ends; everything accepted is written when the shard returns,
// and the written segments are removed.
func TestSpoolFull(t *testing.T) {
	srv := redistest.Start(t)
	cfg := spoolConfig(t.TempDir())
	cfg.SpoolBytes = 64 << 10
	cfg.SpoolSegmentBytes = 8 << 10
	l := openTestLog(t, cfg, srv)
	const ch = "spoolfull"
	appendN(t, l, ch, "a", 1, 1)
	flushLog(t, l)
	srv.Stop(t)
	accepted := 1
	var fullErr error
	for i := 2; i < 100000; i++ {
		b := &channels.Batch{ChannelID: ch}
		b.Add(msg("a", i))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := l.Append(ctx, []*channels.Batch{b})
		cancel()
		if err != nil {
			fullErr = err
			break
		}
		accepted++
	}
	if !errors.Is(fullErr, channels.ErrLogFull) {
		t.Fatalf("Append with a full spool = %v, want ErrLogFull", fullErr)
	}
	if st := l.Stats()[0]; st.SpoolBytes > cfg.SpoolBytes {
		t.Fatalf("spool holds %d bytes, over its bound %d", st.SpoolBytes, cfg.SpoolBytes)
	}
	srv.StartAgain(t) // empty: message 1 is lost with the shard's data
	flushLog(t, l)
	checkExactly(t, l, ch, "a", 2, accepted)
	// The next write starts a new segment (the current one is full), and
	// the written ones go.
	appendN(t, l, ch, "a", accepted+1, accepted+1)
	flushLog(t, l)
	within(t, 10*time.Second, "written spool segments removed", func() bool {
		return l.Stats()[0].SpoolBytes <= cfg.SpoolSegmentBytes
	})
}

// TestSpoolCloseWhileDown: Close with the shard down keeps what it could
// not write in the spool; the next Log writes it.
func TestSpoolCloseWhileDown(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	cfg := spoolConfig(dir)
	cfg.CloseTimeout = 300 * time.Millisecond
	l := openTestLog(t, cfg, srv)
	srv.Stop(t)
	appendN(t, l, "closedown", "a", 1, 100)
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v, want nil (the messages stay in the spool)", err)
	}
	srv.StartAgain(t)
	l2 := openTestLog(t, cfg, srv)
	flushLog(t, l2)
	checkExactly(t, l2, "closedown", "a", 1, 100)
}

// TestSpoolDirLocked: a second Log cannot use a spool directory in use.
func TestSpoolDirLocked(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	openTestLog(t, spoolConfig(dir), srv)
	cfg := spoolConfig(dir)
	cfg.ShardURLs = []string{srv.URL()}
	if l, err := OpenLog(context.Background(), cfg); err == nil {
		l.Close()
		t.Fatal("a second OpenLog on the same spool dir succeeded")
	}
}
