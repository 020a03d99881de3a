package drains

import (
	"context"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/redis"
	"github.com/plexus-router/plexus/test/redistest"
)

// logOpener opens the channel log of a test env (nil: MemLog).
type logOpener = func(testing.TB) channels.Log

// forEachBackend runs test on the embedded MemLog and on the Redis log
// (a real redis-server; skipped when it is missing, unless CI=true).
func forEachBackend(t *testing.T, test func(t *testing.T, open logOpener)) {
	t.Run("memlog", func(t *testing.T) { test(t, nil) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		test(t, func(tb testing.TB) channels.Log {
			l, err := redis.OpenLog(context.Background(), redis.LogConfig{
				ShardURLs:          []string{srv.URL()},
				Default:            channels.Retention{Count: 1500},
				SweepInterval:      50 * time.Millisecond,
				EpochCheckInterval: 200 * time.Millisecond,
				CloseTimeout:       2 * time.Second,
			})
			if err != nil {
				tb.Fatalf("redis.OpenLog: %v", err)
			}
			return l
		})
	})
}

// TestEpochReset: when the log loses a channel's history (a new epoch) the
// drain continues with the new history.
func TestEpochReset(t *testing.T) {
	t.Run("memlog", func(t *testing.T) {
		e := newEnv(t, testConfig()) // the log is not persisted: a restart starts new histories
		r := newHTTPReceiver(t, nil, nil)
		e.start()
		d := e.addDrain(r.url("/"))
		e.waitStarted(d)
		e.appendN(10)
		waitFor(t, "10 messages", func() bool { return len(r.stream().msgs) >= 10 })
		e.reopen()
		e.appendN(10)
		deadline := time.Now().Add(15 * time.Second)
		for len(r.stream().msgs) < 20 {
			if time.Now().After(deadline) {
				info, _ := e.log.Info(context.Background(), e.ch.ID)
				st, _ := e.m.Status(d.ID)
				cur, _ := e.store.DrainCursor(context.Background(), d.ID)
				var recs channels.Records
				res, err := e.log.Read(context.Background(), e.ch.ID, channels.Cursor{}, 0, 0, &recs)
				t.Fatalf("stuck: got %d msgs %q; info %+v; status %+v; cursor %+v; read0 %+v %d %v", len(r.stream().msgs), r.stream().msgs, info, st, cur, res, recs.Len(), err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		wantSeq(t, r.stream().msgs, 0, 20)
		r.check()
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		e := newEnvOn(t, testConfig(), func(tb testing.TB) channels.Log {
			l, err := redis.OpenLog(context.Background(), redis.LogConfig{
				ShardURLs:          []string{srv.URL()},
				EpochCheckInterval: 100 * time.Millisecond,
				CloseTimeout:       2 * time.Second,
			})
			if err != nil {
				tb.Fatal(err)
			}
			return l
		})
		r := newHTTPReceiver(t, nil, nil)
		e.start()
		d := e.addDrain(r.url("/"))
		e.waitStarted(d)
		e.appendN(10)
		waitFor(t, "10 messages", func() bool { return len(r.stream().msgs) >= 10 })
		srv.Restart(t)
		e.appendN(10)
		deadline := time.Now().Add(15 * time.Second)
		for len(r.stream().msgs) < 20 {
			if time.Now().After(deadline) {
				info, _ := e.log.Info(context.Background(), e.ch.ID)
				st, _ := e.m.Status(d.ID)
				cur, _ := e.store.DrainCursor(context.Background(), d.ID)
				var recs channels.Records
				res, err := e.log.Read(context.Background(), e.ch.ID, channels.Cursor{}, 0, 0, &recs)
				t.Fatalf("stuck: got %d msgs %q; info %+v; status %+v; cursor %+v; read0 %+v %d %v", len(r.stream().msgs), r.stream().msgs, info, st, cur, res, recs.Len(), err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		wantSeq(t, r.stream().msgs, 0, 20)
		r.check()
	})
}
