package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/test/redistest"
)

// TestFollowerWaiterBehindDepartedOne: a channel stays in the XREAD set
// for a while after its last waiter left, and the XREAD in flight may
// read it from that waiter's position. A new waiter further back must
// make the follower restart its XREAD; it used to sleep until the XREAD
// timed out (EpochCheckInterval).
func TestFollowerWaiterBehindDepartedOne(t *testing.T) {
	srv := redistest.Start(t)
	// The XREAD blocks this long: a wake-up the follower misses shows as
	// a stall, not as a short delay.
	l := openTestLog(t, LogConfig{EpochCheckInterval: 10 * time.Minute}, srv)
	f := l.shards[0].fol
	endFollowerRead(t, f, testClient(t, srv))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitAsync := func(ctx context.Context, ch string, next uint64) <-chan error {
		done := make(chan error, 1)
		go func() { done <- l.Wait(ctx, ch, channels.Cursor{Offset: next}) }()
		return done
	}
	// watch reports a channel's state in the follower (ok: in the set).
	watch := func(ch string) (waiters int, seen uint64, ok bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		wt := f.chans[ch]
		if wt == nil {
			return 0, 0, false
		}
		return len(wt.waiters), wt.seen, true
	}
	// settled: the XREAD in flight includes every change of the set and
	// no CLIENT UNBLOCK is on its way.
	settled := func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.inRead && f.readGen == f.gen && !f.kicking
	}
	waiting := func(ch string, n int) func() bool {
		return func() bool { w, _, _ := watch(ch); return w == n && settled() }
	}
	const a = "lingers"

	appendN(t, l, a, "a", 1, 1)
	flushLog(t, l)
	// Another channel's waiter keeps the follower reading while a has no
	// waiter, so a lingers in the set.
	bDone := waitAsync(ctx, "other", 1)
	within(t, 10*time.Second, "waiter of other in the XREAD", waiting("other", 1))

	// A tail at a's end is woken by message 2; a then lingers, read
	// from the entry seen.
	w0 := waitAsync(ctx, a, 2)
	within(t, 10*time.Second, "first waiter of a in the XREAD", waiting(a, 1))
	appendN(t, l, a, "a", 2, 2)
	if err := <-w0; err != nil {
		t.Fatalf("first Wait = %v", err)
	}
	within(t, 10*time.Second, "a lingering after its waiter woke", func() bool {
		w, seen, ok := watch(a)
		return ok && w == 0 && seen == 2 && settled()
	})

	// A tail far ahead of a's end; a new channel makes the follower
	// restart its XREAD, which now reads a from offset 99.
	ctx1, cancel1 := context.WithCancel(ctx)
	w1 := waitAsync(ctx1, a, 100)
	within(t, 10*time.Second, "waiter at 100", func() bool { w, _, _ := watch(a); return w == 1 })
	cDone := waitAsync(ctx, "third", 1)
	within(t, 10*time.Second, "XREAD restarted with the waiter at 100", func() bool {
		w, _, _ := watch("third")
		return w == 1 && settled()
	})
	cancel1()
	if err := <-w1; err == nil {
		t.Fatal("canceled Wait returned nil")
	}
	if w, _, ok := watch(a); !ok || w != 0 {
		t.Fatalf("a: in set %v with %d waiters, want lingering without waiters", ok, w)
	}

	// A tail at a's end while a lingers, then message 3.
	w2 := waitAsync(ctx, a, 3)
	within(t, 10*time.Second, "waiter at 3", func() bool { w, _, _ := watch(a); return w == 1 })
	appendN(t, l, a, "a", 3, 3)
	select {
	case err := <-w2:
		if err != nil {
			t.Fatalf("Wait(3) = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait(3) not woken by message 3: the XREAD in flight reads a from past it (lost wake-up)")
	}
	cancel()
	<-bDone
	<-cDone
}

// endFollowerRead makes the cleanup (before the log closes) end the
// follower's XREAD once no waiter is left: Close does not interrupt it,
// and a test with a long EpochCheckInterval would wait that long.
func endFollowerRead(t *testing.T, f *follower, admin *goredis.Client) {
	t.Cleanup(func() {
		within(t, 10*time.Second, "follower out of its XREAD", func() bool {
			f.mu.Lock()
			busy := f.inRead
			for _, wt := range f.chans {
				busy = busy || len(wt.waiters) > 0
			}
			id := f.clientID
			f.mu.Unlock()
			if busy {
				admin.ClientUnblock(context.Background(), id)
			}
			return !busy
		})
	})
}

// TestFollowerWaitAcrossRestart: a reader that read to the end of a
// channel (offset 4 of an epoch) and then waits must wake when the shard
// lost its data and another node appended as many messages again (a new
// epoch, next offset 4 again). Wait used to take the epoch it found at the
// call (or, with Redis unreachable, at the follower's next check) for the
// caller's, and waited for offset 4 of the new history: the drain of
// drains.TestEpochReset/redis stalled until a further message arrived.
func TestFollowerWaitAcrossRestart(t *testing.T) {
	srv := redistest.Start(t)
	reader := openTestLog(t, LogConfig{EpochCheckInterval: 50 * time.Millisecond}, srv)
	writer := openTestLog(t, LogConfig{}, srv) // another node: its writes do not tell reader's follower
	const a = "a"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// toEnd appends 3 messages through writer and reads them through
	// reader: the cursor is at offset 4 of the channel's epoch.
	toEnd := func() channels.Cursor {
		t.Helper()
		appendN(t, writer, a, "w", 1, 3)
		if err := writer.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		res, msgs, _ := readAll(t, reader, a, channels.Cursor{})
		if len(msgs) != 3 || res.Next.Offset != 4 || res.Next.Epoch == "" {
			t.Fatalf("read %d messages up to %+v, want 3 up to offset 4", len(msgs), res.Next)
		}
		return res.Next
	}
	waitAsync := func(from channels.Cursor) <-chan error {
		done := make(chan error, 1)
		go func() { done <- reader.Wait(ctx, a, from) }()
		return done
	}
	expect := func(done <-chan error, what string) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s = %v, want nil", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not return: it waits in the new history", what)
		}
	}

	// The restart and the new history come between the Read and the Wait.
	cur := toEnd()
	srv.Restart(t)
	next := toEnd()
	if next.Epoch == cur.Epoch {
		t.Fatalf("epoch %s after the restart, want a new one", next.Epoch)
	}
	expect(waitAsync(cur), "Wait(cursor of the lost history)")

	// The Wait begins while Redis is down (it cannot read the epoch).
	srv.Stop(t)
	done := waitAsync(next)
	f := reader.shards[0].fol
	within(t, 10*time.Second, "waiter registered", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		wt := f.chans[a]
		return wt != nil && len(wt.waiters) == 1
	})
	srv.StartAgain(t)
	toEnd()
	expect(done, "Wait(cursor of the lost history) begun while Redis was down")
}
