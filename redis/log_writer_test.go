package redis

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/test/redistest"
)

var errCut = errors.New("test: connection cut")

// splitRound is a go-redis hook that splits the first write round (a
// pipeline of append scripts) after its first command and runs between
// in the gap: what Redis does when another client's command arrives
// while it reads a large pipeline in several pieces. With cut, the rest
// of the round is not sent and fails as on a lost connection.
type splitRound struct {
	between func(ctx context.Context) error
	cut     bool
	done    atomic.Bool
	err     atomic.Value // error from between
}

func (h *splitRound) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *splitRound) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (h *splitRound) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) < 2 || cmds[0].Name() != "evalsha" || !h.done.CompareAndSwap(false, true) {
			return next(ctx, cmds)
		}
		err := next(ctx, cmds[:1])
		if berr := h.between(ctx); berr != nil {
			h.err.Store(berr)
		}
		if h.cut {
			for _, c := range cmds[1:] {
				c.SetErr(errCut)
			}
			return errCut
		}
		if err2 := next(ctx, cmds[1:]); err == nil {
			err = err2
		}
		return err
	}
}

func (h *splitRound) check(t *testing.T) {
	t.Helper()
	if !h.done.Load() {
		t.Fatal("the write round was not split: the test tests nothing")
	}
	if err, _ := h.err.Load().(error); err != nil {
		t.Fatalf("between the round's commands: %v", err)
	}
}

func flushLog(t *testing.T, l *Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v (the writer is stuck)", err)
	}
}

// TestLogScriptLoadedMidRound: on a fresh server another node loads the
// append script while this node's first round is on the wire, so the
// round's first entry fails with NOSCRIPT and the next ones of the same
// channel find the script. They must wait for the first (a log that did
// not exist yet used to take them, and the retried first entry was then
// taken for one already applied: its messages were lost).
func TestLogScriptLoadedMidRound(t *testing.T) {
	srv := redistest.Start(t)
	l := openTestLog(t, LogConfig{MaxEntryMessages: 10}, srv)
	other := testClient(t, srv)
	ctx := context.Background()
	if err := other.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	h := &splitRound{between: func(ctx context.Context) error {
		return appendScript.Load(ctx, other).Err()
	}}
	l.shards[0].client.AddHook(h)

	const ch = "scriptload"
	appendN(t, l, ch, "a", 1, 30) // one round: three entries of ten
	flushLog(t, l)
	h.check(t)
	_, msgs, offs := readAll(t, l, ch, channels.Cursor{})
	if len(msgs) != 30 {
		t.Fatalf("read %d messages, want 30", len(msgs))
	}
	for i, m := range msgs {
		if want := msg("a", i+1); !bytes.Equal(m, want) || offs[i] != uint64(i+1) {
			t.Fatalf("record %d at offset %d = %q, want %q at %d", i, offs[i], m, want, i+1)
		}
	}
}

// TestLogRestartMidRoundOtherNodeFirst: the shard loses its data after the
// first entry of a round landed and before the rest did, and another node
// starts the new log first. The rest of the round follows the other
// node's messages (the entry before it went with the old log); it used to
// wait forever for that entry (ORDER), stopping the shard's writer.
func TestLogRestartMidRoundOtherNodeFirst(t *testing.T) {
	srv := redistest.Start(t)
	l := openTestLog(t, LogConfig{MaxEntryMessages: 10}, srv)
	b := openTestLog(t, LogConfig{}, srv)
	admin := testClient(t, srv)
	const ch = "restartmid"
	appendN(t, l, ch, "a", 1, 1)
	flushLog(t, l)

	h := &splitRound{cut: true, between: func(ctx context.Context) error {
		// The shard restarts empty (data and scripts gone) ...
		if err := admin.FlushAll(ctx).Err(); err != nil {
			return err
		}
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			return err
		}
		// ... and node b writes the channel first.
		bt := &channels.Batch{ChannelID: ch}
		bt.Add(msg("b", 1))
		if err := b.Append(ctx, []*channels.Batch{bt}); err != nil {
			return err
		}
		return b.Flush(ctx)
	}}
	l.shards[0].client.AddHook(h)
	appendN(t, l, ch, "a", 2, 21) // one round: two entries of ten
	flushLog(t, l)
	h.check(t)

	_, msgs, offs := readAll(t, l, ch, channels.Cursor{})
	want := [][]byte{msg("b", 1)}
	for i := 12; i <= 21; i++ { // 2..11 were lost with the old log
		want = append(want, msg("a", i))
	}
	if len(msgs) != len(want) {
		t.Fatalf("read %d messages %q, want %d", len(msgs), msgs, len(want))
	}
	for i := range want {
		if !bytes.Equal(msgs[i], want[i]) || offs[i] != uint64(i+1) {
			t.Fatalf("record %d at offset %d = %q, want %q at %d", i, offs[i], msgs[i], want[i], i+1)
		}
	}
}
