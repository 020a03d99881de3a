package registry

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

func tok(ch, name string) channels.Token {
	return channels.Token{ID: channels.NewToken(), ChannelID: ch, Name: name}
}

// TestRegistryRoutesModel checks LookupToken against a plain map through
// random puts, moves and deletes, enough of them that the route delta is
// merged into the base several times.
func TestRegistryRoutesModel(t *testing.T) {
	r := New()
	model := map[string]channels.Route{}
	var ids []string
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		switch op := rng.IntN(10); {
		case op < 5 || len(ids) == 0: // put new
			n := 1 + rng.IntN(3)
			var ts []channels.Token
			for range n {
				tk := tok(strconv.Itoa(rng.IntN(20)), "n"+strconv.Itoa(i))
				ts = append(ts, tk)
				ids = append(ids, tk.ID)
				model[tk.ID] = channels.Route{ChannelID: tk.ChannelID, Token: tk.ID, Name: tk.Name}
			}
			r.PutTokens(ts...)
		case op < 7: // move or rename an existing one
			id := ids[rng.IntN(len(ids))]
			tk := channels.Token{ID: id, ChannelID: strconv.Itoa(rng.IntN(20)), Name: "moved"}
			r.PutToken(tk)
			model[id] = channels.Route{ChannelID: tk.ChannelID, Token: id, Name: tk.Name}
		case op < 9: // delete
			id := ids[rng.IntN(len(ids))]
			_, had := model[id]
			if got := r.DeleteToken(id); got != had {
				t.Fatalf("DeleteToken(%s) = %v, want %v", id, got, had)
			}
			delete(model, id)
		default: // delete a channel
			ch := strconv.Itoa(rng.IntN(20))
			r.DeleteChannel(ch)
			for id, rt := range model {
				if rt.ChannelID == ch {
					delete(model, id)
				}
			}
		}
		if i%100 == 0 || i > 2900 {
			checkRoutes(t, r, model, ids)
		}
	}
	checkRoutes(t, r, model, ids)
}

func checkRoutes(t *testing.T, r *Registry, model map[string]channels.Route, ids []string) {
	t.Helper()
	for _, id := range ids {
		want, wantOK := model[id]
		got, ok := r.LookupToken([]byte(id))
		if ok && (got.Limiter == nil || got.Limiter.ChannelID() != got.ChannelID) {
			t.Fatalf("LookupToken(%s): limiter %v, want the channel's", id, got.Limiter)
		}
		got.Limiter = nil
		if ok != wantOK || got != want {
			t.Fatalf("LookupToken(%s) = %+v, %v; want %+v, %v", id, got, ok, want, wantOK)
		}
	}
	if r.TokenCount() != len(model) {
		t.Fatalf("TokenCount = %d, want %d", r.TokenCount(), len(model))
	}
	byChan := map[string]int{}
	for _, rt := range model {
		byChan[rt.ChannelID]++
	}
	for ch, n := range byChan {
		if got := len(r.ChannelTokens(ch)); got != n {
			t.Fatalf("ChannelTokens(%s) has %d, want %d", ch, got, n)
		}
	}
}

func TestRegistryChannelTokensSorted(t *testing.T) {
	r := New()
	a := channels.Token{ID: "t.2", ChannelID: "c", Name: "web"}
	b := channels.Token{ID: "t.1", ChannelID: "c", Name: "web"}
	c := channels.Token{ID: "t.3", ChannelID: "c", Name: "app"}
	r.PutTokens(a, b, c, channels.Token{ID: "t.4", ChannelID: "other", Name: "app"})
	if got, want := r.ChannelTokens("c"), []channels.Token{c, b, a}; !slices.Equal(got, want) {
		t.Fatalf("ChannelTokens = %v, want %v", got, want)
	}
	// Moving a token to another channel.
	r.PutToken(channels.Token{ID: "t.3", ChannelID: "other", Name: "app"})
	if got := r.ChannelTokens("c"); len(got) != 2 {
		t.Fatalf("after move: %v", got)
	}
	if got := r.ChannelTokens("other"); len(got) != 2 {
		t.Fatalf("after move: %v", got)
	}
}

func TestRegistryDrains(t *testing.T) {
	r := New()
	r.PutChannel(channels.Channel{ID: "c"})
	r.PutDrain(channels.Drain{ID: 7, ChannelID: "c", Token: "d.7", URL: "syslog://Host.example.org"})
	r.PutDrain(channels.Drain{ID: 3, ChannelID: "c", Token: "d.3"})
	r.PutDrain(channels.Drain{ID: 5, ChannelID: "x", Token: "d.5", URL: "https://a.example.org"})
	if r.DrainIndex() != 7 {
		t.Fatalf("DrainIndex = %d, want 7 (raised by PutDrain)", r.DrainIndex())
	}
	if got := drainIDsOf(r.ChannelDrains("c")); !slices.Equal(got, []int64{3, 7}) {
		t.Fatalf("ChannelDrains = %v", got)
	}
	if got := drainIDsOf(r.Drains()); !slices.Equal(got, []int64{3, 5, 7}) {
		t.Fatalf("Drains = %v", got)
	}
	if n := r.DrainsWithURL("c"); n != 1 {
		t.Fatalf("DrainsWithURL = %d", n)
	}
	tests := []struct {
		ch, url string
		except  int64
		want    bool
	}{
		{"c", "syslog://host.example.org:601", 0, true},
		{"c", "SYSLOG://host.example.org", 0, true},
		{"c", "syslog://host.example.org:601", 7, false}, // itself
		{"c", "syslog://host.example.org:602", 0, false},
		{"x", "syslog://host.example.org:601", 0, false}, // other channel
		{"x", "https://a.example.org", 0, true},
		{"x", "https://a.example.org/", 0, false}, // path differs, as in Logplex
	}
	for _, tt := range tests {
		if got := r.DrainURLTaken(tt.ch, tt.url, tt.except); got != tt.want {
			t.Errorf("DrainURLTaken(%q, %q, %d) = %v, want %v", tt.ch, tt.url, tt.except, got, tt.want)
		}
	}
	// Cursors: only for known drains, kept when the drain changes, dropped
	// with it.
	if r.SetDrainCursor(99, channels.Cursor{Offset: 1}) {
		t.Fatal("cursor stored for an unknown drain")
	}
	if !r.SetDrainCursor(3, channels.Cursor{Epoch: "e", Offset: 4}) {
		t.Fatal("cursor not stored")
	}
	r.PutDrain(channels.Drain{ID: 3, ChannelID: "x", Token: "d.3", URL: "https://b.example.org"})
	if c, ok := r.DrainCursor(3); !ok || c.Offset != 4 {
		t.Fatalf("cursor after PutDrain = %v, %v", c, ok)
	}
	if got := drainIDsOf(r.ChannelDrains("x")); !slices.Equal(got, []int64{3, 5}) {
		t.Fatalf("ChannelDrains after move = %v", got)
	}
	if !r.DeleteDrain(3) || r.DeleteDrain(3) {
		t.Fatal("DeleteDrain results")
	}
	if _, ok := r.DrainCursor(3); ok {
		t.Fatal("cursor survived its drain")
	}
}

func drainIDsOf(ds []channels.Drain) []int64 {
	var ids []int64
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func TestRegistryDeleteChannel(t *testing.T) {
	r := New()
	r.PutChannel(channels.Channel{ID: "c"})
	tk := tok("c", "app")
	r.PutTokens(tk, tok("d", "app"))
	r.PutDrain(channels.Drain{ID: 1, ChannelID: "c", Token: "d.1", URL: "https://a.example.org"})
	r.PutDrain(channels.Drain{ID: 2, ChannelID: "d", Token: "d.2"})
	r.SetDrainCursor(1, channels.Cursor{Offset: 3})
	if !r.DeleteChannel("c") {
		t.Fatal("DeleteChannel = false")
	}
	if _, ok := r.Channel("c"); ok {
		t.Fatal("channel survived")
	}
	if _, ok := r.LookupToken([]byte(tk.ID)); ok {
		t.Fatal("token survived")
	}
	if _, ok := r.Drain(1); ok {
		t.Fatal("drain survived")
	}
	if _, ok := r.DrainCursor(1); ok {
		t.Fatal("cursor survived")
	}
	if r.DeleteChannel("c") {
		t.Fatal("second DeleteChannel = true")
	}
	// No channel record, but tokens and drains: still deleted.
	if !r.ChannelInUse("d") || !r.DeleteChannel("d") || r.ChannelInUse("d") {
		t.Fatal("orphans of d not deleted")
	}
	if r.TokenCount() != 0 || len(r.Drains()) != 0 {
		t.Fatal("records left")
	}
	// DrainIndex never goes down.
	if r.DrainIndex() != 2 {
		t.Fatalf("DrainIndex = %d", r.DrainIndex())
	}
}

func TestRegistryChannelCopies(t *testing.T) {
	r := New()
	flags := []string{"no_tail"}
	r.PutChannel(channels.Channel{ID: "c", Flags: flags})
	flags[0] = "changed"
	c, _ := r.Channel("c")
	c.Flags[0] = "mutated"
	if c2, _ := r.Channel("c"); c2.Flags[0] != "no_tail" {
		t.Fatalf("registry shares flag slices: %v", c2.Flags)
	}
}

func TestRegistryCredsSessions(t *testing.T) {
	r := New()
	c := channels.Cred{ID: channels.NewCredID(), Pass: channels.NewCredPass(), Name: "x", FullAPI: true}
	r.PutCred(c)
	r.PutCred(channels.Cred{ID: "00", Name: "first"})
	if got, ok := r.LookupCred(c.ID); !ok || got != c {
		t.Fatalf("LookupCred = %v, %v", got, ok)
	}
	if got := r.Creds(); len(got) != 2 || got[0].ID != "00" {
		t.Fatalf("Creds = %v", got)
	}
	if !r.DeleteCred(c.ID) || r.DeleteCred(c.ID) {
		t.Fatal("DeleteCred results")
	}
	if _, ok := r.LookupCred(c.ID); ok {
		t.Fatal("deleted cred found")
	}

	now := time.Now()
	body := []byte("{}")
	r.PutSession(channels.Session{ID: "a", Body: body, Expires: now.Add(time.Minute)})
	r.PutSession(channels.Session{ID: "b", Body: body, Expires: now.Add(-time.Second)})
	body[0] = 'X'
	if s, ok := r.Session("a", now); !ok || string(s.Body) != "{}" {
		t.Fatalf("Session(a) = %q, %v", s.Body, ok)
	}
	if _, ok := r.Session("b", now); ok {
		t.Fatal("expired session returned")
	}
	if _, ok := r.Session("a", now.Add(time.Minute)); ok {
		t.Fatal("session returned at its expiry")
	}
	if n := r.SweepSessions(now); n != 1 || r.SessionCount() != 1 {
		t.Fatalf("SweepSessions = %d, count %d", n, r.SessionCount())
	}
	if !r.DeleteSession("a") || r.SessionCount() != 0 {
		t.Fatal("DeleteSession")
	}
}

func TestRegistryReplaceState(t *testing.T) {
	now := time.Now()
	st := State{
		Channels: []channels.Channel{{ID: "1", Name: "one"}, {ID: "app-x", Flags: []string{"no_redis"}}},
		Tokens:   []channels.Token{{ID: "t.a", ChannelID: "1", Name: "app"}, {ID: "t.b", ChannelID: "app-x", Name: "web"}},
		Drains:   []channels.Drain{{ID: 4, ChannelID: "1", Token: "d.4", URL: "https://a.example.org"}, {ID: 9, ChannelID: "app-x", Token: "d.9"}},
		Creds:    []channels.Cred{{ID: "C1", Pass: "P", FullAPI: true}},
		Sessions: []channels.Session{{ID: "s1", Body: []byte("{}"), Expires: now.Add(time.Hour)}},
		Cursors:  map[int64]channels.Cursor{4: {Epoch: "e", Offset: 10}},
		// Counters may be ahead of the records (deleted ones).
		ChannelIndex: 12,
		DrainIndex:   20,
	}
	r := New()
	r.PutTokens(tok("old", "gone"))
	sub := r.Changes()
	r.Replace(st)
	select {
	case <-sub:
	default:
		t.Fatal("Replace did not notify")
	}
	if got := r.State(now); !reflect.DeepEqual(got, st) {
		t.Fatalf("State = %+v\nwant %+v", got, st)
	}
	if rt, ok := r.LookupToken([]byte("t.b")); !ok || rt.ChannelID != "app-x" {
		t.Fatalf("LookupToken after Replace = %v, %v", rt, ok)
	}
	if _, ok := r.LookupCred("C1"); !ok {
		t.Fatal("cred after Replace")
	}
	if r.TokenCount() != 2 {
		t.Fatal("old token survived Replace")
	}
	// Expired sessions are left out of State.
	if got := r.State(now.Add(2 * time.Hour)); len(got.Sessions) != 0 {
		t.Fatalf("State kept an expired session")
	}
	// Counters only go up.
	r.SetChannelIndex(5)
	r.SetDrainIndex(5)
	if r.ChannelIndex() != 12 || r.DrainIndex() != 20 {
		t.Fatal("counters went down")
	}
}

func TestRegistryChanges(t *testing.T) {
	r := New()
	sub := r.Changes()
	pending := func() bool {
		select {
		case <-sub:
			return true
		default:
			return false
		}
	}
	// Several changes coalesce into one signal; the writer never blocks.
	r.PutChannel(channels.Channel{ID: "c"})
	r.PutToken(tok("c", "app"))
	r.PutDrain(channels.Drain{ID: 1, ChannelID: "c"})
	if !pending() || pending() {
		t.Fatal("want exactly one coalesced signal")
	}
	// Creds, sessions and cursors are not channel/token/drain changes.
	r.PutCred(channels.Cred{ID: "x"})
	r.PutSession(channels.Session{ID: "s"})
	r.SetDrainCursor(1, channels.Cursor{Offset: 1})
	if pending() {
		t.Fatal("signal for creds/sessions/cursors")
	}
	// No-op deletes do not signal.
	r.DeleteToken("t.none")
	r.DeleteDrain(42)
	r.DeleteChannel("none")
	if pending() {
		t.Fatal("signal for a no-op delete")
	}
	for _, change := range []func(){
		func() { r.DeleteDrain(1) },
		func() { r.DeleteChannel("c") },
		func() { r.Notify() },
	} {
		change()
		if !pending() {
			t.Fatal("no signal")
		}
	}
	r.Close()
	if _, ok := <-sub; ok {
		t.Fatal("subscription open after Close")
	}
	if _, ok := <-r.Changes(); ok {
		t.Fatal("Changes after Close not closed")
	}
	r.Close() // idempotent
	r.PutChannel(channels.Channel{ID: "after"})
}

func TestNormalizeDrainURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"syslog://h.example.org", "syslog://h.example.org:601"},
		{"SYSLOG://H.Example.org:601", "syslog://h.example.org:601"},
		{"syslog+tls://h", "syslog+tls://h:6514"},
		{" https://a.example.org/x?y=1 ", "https://a.example.org/x?y=1"},
		{"http://a", "http://a"},
		{"http://a/", "http://a/"},
		{"ftp://A.example.org/x", "ftp://a.example.org/x"}, // v3 stores any URL
		{"%zz", "%zz"},
	}
	for _, tt := range tests {
		if got := channels.NormalizeDrainURL(tt.in); got != tt.want {
			t.Errorf("NormalizeDrainURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := New()
	stable := tok("s", "app")
	r.PutToken(stable)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			key := []byte(stable.ID)
			for !stop.Load() {
				if rt, ok := r.LookupToken(key); !ok || rt.ChannelID != "s" {
					t.Error("stable token lost")
					return
				}
				r.LookupCred("x")
			}
		})
	}
	wg.Go(func() {
		sub := r.Changes()
		for !stop.Load() {
			select {
			case <-sub:
			case <-time.After(time.Millisecond):
			}
		}
	})
	for i := range 500 {
		ch := fmt.Sprint(i % 7)
		r.PutChannel(channels.Channel{ID: ch})
		r.PutTokens(tok(ch, "a"), tok(ch, "b"))
		r.PutDrain(channels.Drain{ID: int64(i + 1), ChannelID: ch, URL: "https://x.example.org/"})
		r.PutCred(channels.Cred{ID: "x"})
		r.SetDrainCursor(int64(i+1), channels.Cursor{Offset: uint64(i)})
		if i%5 == 0 {
			r.DeleteChannel(ch)
		}
		_ = r.ChannelTokens(ch)
		_ = r.DrainURLTaken(ch, "https://x.example.org/", 0)
	}
	stop.Store(true)
	wg.Wait()
}

func TestRegistryLookupTokenAllocs(t *testing.T) {
	r := New()
	var ts []channels.Token
	for i := range 1000 {
		ts = append(ts, tok(strconv.Itoa(i), "app"))
	}
	r.PutTokens(ts...) // in the delta, then merged
	r.PutToken(tok("x", "app"))
	r.DeleteToken(ts[0].ID) // a tombstone in the delta
	inBase := []byte(ts[1].ID)
	deleted := []byte(ts[0].ID)
	if len(r.routes.Load().delta) == 0 {
		t.Fatal("test wants a non-empty delta")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := r.LookupToken(inBase); !ok {
			t.Fatal("miss")
		}
		if _, ok := r.LookupToken(deleted); ok {
			t.Fatal("deleted token found")
		}
	})
	if allocs != 0 {
		t.Fatalf("LookupToken allocates: %v", allocs)
	}
}

func BenchmarkLookupToken(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		r := New()
		keys := make([][]byte, n)
		ts := make([]channels.Token, n)
		for i := range n {
			ts[i] = tok(strconv.Itoa(i%1000), "app")
			keys[i] = []byte(ts[i].ID)
		}
		r.PutTokens(ts...)
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := r.LookupToken(keys[i%n]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("tokens=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, ok := r.LookupToken(keys[i%n]); !ok {
						b.Fatal("miss")
					}
					i++
				}
			})
		})
	}
}

// BenchmarkPutToken measures a token write with many tokens (the copy-on-write
// cost the route delta keeps near √n).
func BenchmarkPutToken(b *testing.B) {
	r := New()
	ts := make([]channels.Token, 100_000)
	for i := range ts {
		ts[i] = tok(strconv.Itoa(i%1000), "app")
	}
	r.PutTokens(ts...)
	b.ReportAllocs()
	for b.Loop() {
		r.PutToken(tok("c", "app"))
	}
}
