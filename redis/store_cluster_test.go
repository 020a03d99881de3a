package redis

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/test/redistest"
)

// within polls cond until it holds or d passes.
func within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStoreTwoNodes: a change made through one node becomes visible on
// the other (through notifications), for every kind of record. The bounds
// are generous: a loaded machine delays notifications, not correctness.
func TestStoreTwoNodes(t *testing.T) {
	srv := redistest.Start(t)
	a := openTestStore(t, srv, StoreConfig{})
	b := openTestStore(t, srv, StoreConfig{})
	ctx := context.Background()

	ch, toks, err := a.CreateChannel(ctx, "app", []string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "token on node b", func() bool {
		r, ok := b.LookupToken([]byte(toks[0].ID))
		return ok && r.ChannelID == ch.ID && r.Name == "web"
	})
	if got, err := b.Channel(ctx, ch.ID); err != nil || got.Name != "app" {
		t.Fatalf("b.Channel = %+v, %v", got, err)
	}

	d, err := b.CreateDrain(ctx, ch.ID, "https://example.org/logs", 6)
	if err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "drain on node a", func() bool {
		got, err := a.Drain(ctx, d.ID)
		return err == nil && got == d
	})
	// The duplicate check is atomic in Redis, whichever node asks.
	if _, err := a.CreateDrain(ctx, ch.ID, "https://example.org/logs", 6); channels.ErrorCode(err) != channels.CodeConflict {
		t.Fatalf("duplicate drain through the other node: %v", err)
	}
	if err := b.SetDrainCursor(ctx, d.ID, channels.Cursor{Epoch: "e", Offset: 7}); err != nil {
		t.Fatal(err)
	}
	if c, err := a.DrainCursor(ctx, d.ID); err != nil || c != (channels.Cursor{Epoch: "e", Offset: 7}) {
		t.Fatalf("a.DrainCursor = %+v, %v", c, err)
	}

	cred, err := a.CreateCred(ctx, "ops", true, false)
	if err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "credential on node b", func() bool {
		got, ok := b.LookupCred(cred.ID)
		return ok && got == cred
	})
	sess, err := a.CreateSession(ctx, []byte(`{"channel_id":"1"}`), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Session(ctx, sess.ID); err != nil || string(got.Body) != `{"channel_id":"1"}` {
		t.Fatalf("b.Session = %+v, %v", got, err)
	}

	_, toks2, _, err := b.PutChannel(ctx, ch.ID, []string{"worker"}, true)
	if err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "v3 token set on node a", func() bool {
		_, oldOK := a.LookupToken([]byte(toks[0].ID))
		_, newOK := a.LookupToken([]byte(toks2[0].ID))
		return !oldOK && newOK
	})

	sub := b.Changes()
	if err := a.DeleteChannel(ctx, ch.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub:
	case <-time.After(20 * time.Second):
		t.Fatal("no change signal on node b")
	}
	within(t, 20*time.Second, "deletion on node b", func() bool {
		_, err1 := b.Channel(ctx, ch.ID)
		_, err2 := b.Drain(ctx, d.ID)
		_, ok := b.LookupToken([]byte(toks2[0].ID))
		return channels.IsNotFound(err1) && channels.IsNotFound(err2) && !ok
	})
}

// TestStoreResyncHeals: changes that bypass notifications (another
// program writing Logplex's keys) are picked up by the periodic resync.
func TestStoreResyncHeals(t *testing.T) {
	srv := redistest.Start(t)
	s := openTestStore(t, srv, StoreConfig{ResyncInterval: 50 * time.Millisecond})
	c := testClient(t, srv)
	ctx := context.Background()
	const tok = "t.11111111-2222-4333-8444-555555555555"
	c.HSet(ctx, "ch:77:data", "name", "legacy", "flags", "no_tail:no_redis")
	c.HSet(ctx, tokenKey(tok), "ch", "77", "name", "app")
	c.HSet(ctx, "drain:900:data", "ch", "77", "token", "d.x", "host", "logs.example.org", "port", "514")
	c.HSet(ctx, "cred:ABC", "pass", "P", "name", "n", "full_api", "1", "channel", "any")
	within(t, 20*time.Second, "records written behind the store's back", func() bool {
		ch, err := s.Channel(ctx, "77")
		r, ok := s.LookupToken([]byte(tok))
		d, derr := s.Drain(ctx, 900)
		cr, cok := s.LookupCred("ABC")
		return err == nil && ch.Name == "legacy" && ch.HasFlag("no_tail") && ch.HasFlag("no_redis") &&
			ok && r.ChannelID == "77" && derr == nil && d.URL == "syslog://logs.example.org:514" &&
			cok && cr.FullAPI && cr.AnyChannel
	})
	c.Del(ctx, tokenKey(tok), "ch:77:data")
	within(t, 20*time.Second, "deletions behind the store's back", func() bool {
		_, ok := s.LookupToken([]byte(tok))
		_, err := s.Channel(ctx, "77")
		return !ok && channels.IsNotFound(err)
	})
	// The drain of the deleted channel record is its own record: still there.
	if _, err := s.Drain(ctx, 900); err != nil {
		t.Fatalf("drain record removed with its channel record: %v", err)
	}
}

// TestStoreBootsWithoutRedis: a store whose Redis is down is not ready;
// it loads once Redis is back.
func TestStoreBootsWithoutRedis(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop(t)
	logs := &lineCounter{}
	s, err := OpenStore(context.Background(), StoreConfig{URL: srv.URL(), Logger: zerolog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Two failed loads: it tried, failed and tried again, and is still
	// not ready.
	within(t, 20*time.Second, "the store retrying its load", func() bool {
		return logs.count("loading configuration from redis failed") >= 2
	})
	if s.Ready() {
		t.Fatal("ready without redis")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, _, err = s.CreateChannel(ctx, "x", nil)
	cancel()
	if channels.ErrorCode(err) != channels.CodeUnavailable {
		t.Fatalf("CreateChannel while booting = %v, want unavailable", err)
	}
	srv.StartAgain(t)
	within(t, 20*time.Second, "ready after redis returns", s.Ready)
}

// lineCounter is a log writer that counts lines containing a text.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, string(p))
	return len(p), nil
}

func (c *lineCounter) count(text string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, text) {
			n++
		}
	}
	return n
}
