package redis

import (
	"context"
	"testing"
	"time"

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

// TestStoreTwoNodes: a change made through one node is visible on the
// other within a second, for every kind of record.
func TestStoreTwoNodes(t *testing.T) {
	srv := redistest.Start(t)
	a := openTestStore(t, srv, StoreConfig{})
	b := openTestStore(t, srv, StoreConfig{})
	ctx := context.Background()

	ch, toks, err := a.CreateChannel(ctx, "app", []string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "token on node b", func() bool {
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
	within(t, time.Second, "drain on node a", func() bool {
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
	within(t, time.Second, "credential on node b", func() bool {
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
	within(t, time.Second, "v3 token set on node a", func() bool {
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
	case <-time.After(time.Second):
		t.Fatal("no change signal on node b")
	}
	within(t, time.Second, "deletion on node b", func() bool {
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
	within(t, 2*time.Second, "records written behind the store's back", func() bool {
		ch, err := s.Channel(ctx, "77")
		r, ok := s.LookupToken([]byte(tok))
		d, derr := s.Drain(ctx, 900)
		cr, cok := s.LookupCred("ABC")
		return err == nil && ch.Name == "legacy" && ch.HasFlag("no_tail") && ch.HasFlag("no_redis") &&
			ok && r.ChannelID == "77" && derr == nil && d.URL == "syslog://logs.example.org:514" &&
			cok && cr.FullAPI && cr.AnyChannel
	})
	c.Del(ctx, tokenKey(tok), "ch:77:data")
	within(t, 2*time.Second, "deletions behind the store's back", func() bool {
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
	s, err := OpenStore(context.Background(), StoreConfig{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.Sleep(100 * time.Millisecond)
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
	within(t, 5*time.Second, "ready after redis returns", s.Ready)
}
