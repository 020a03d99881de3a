// Package storetest is the contract suite every channels.Store backend
// passes. A backend's test calls Run with a function that opens a fresh,
// empty store (and registers its cleanup with t.Cleanup; Close must be safe
// to call twice).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// Deadline is how long eventually waits for a change to become visible
// (a clustered backend applies changes through notifications).
const Deadline = 2 * time.Second

// Run runs the contract suite. open must return a new empty store.
func Run(t *testing.T, open func(t *testing.T) channels.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s channels.Store)
	}{
		{"Ready", testReady},
		{"CreateChannel", testCreateChannel},
		{"CreateChannelNoTokens", testCreateChannelNoTokens},
		{"PutChannel", testPutChannel},
		{"DeleteChannel", testDeleteChannel},
		{"ChannelRetention", testChannelRetention},
		{"RateLimit", testRateLimit},
		{"CreateToken", testCreateToken},
		{"ReserveDrain", testReserveDrain},
		{"CreateDrain", testCreateDrain},
		{"MaxDrains", testMaxDrains},
		{"SetDrainURL", testSetDrainURL},
		{"SetDrainOptions", testSetDrainOptions},
		{"DeleteDrain", testDeleteDrain},
		{"DrainLists", testDrainLists},
		{"Cursors", testCursors},
		{"Creds", testCreds},
		{"Sessions", testSessions},
		{"Changes", testChanges},
		{"ConcurrentCreateChannel", testConcurrentCreateChannel},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

var (
	tokenRE = regexp.MustCompile(`^t\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	drainRE = regexp.MustCompile(`^d\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	credRE  = regexp.MustCompile(`^[0-9A-F]{32}$`)
	passRE  = regexp.MustCompile(`^[0-9A-F]{64}$`)
)

func ctx(t *testing.T) context.Context { return t.Context() }

// eventually polls cond until it holds or Deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, Deadline, what, cond)
}

func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what string, err error, code channels.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want code %d", what, code)
	}
	var e *channels.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T) is not a *channels.Error", what, err, err)
	}
	if got := channels.ErrorCode(err); got != code {
		t.Fatalf("%s: error %q has code %d, want %d", what, err, got, code)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func tokenNames(ts []channels.Token) []string {
	var names []string
	for _, tk := range ts {
		names = append(names, tk.Name)
	}
	return names
}

func tokenByName(ts []channels.Token) map[string]string {
	m := map[string]string{}
	for _, tk := range ts {
		m[tk.Name] = tk.ID
	}
	return m
}

func routeIs(s channels.Store, tk channels.Token) bool {
	r, ok := s.LookupToken([]byte(tk.ID))
	if !ok || r.Limiter == nil || r.Limiter.ChannelID() != tk.ChannelID {
		return false
	}
	r.Limiter = nil
	return r == channels.Route{ChannelID: tk.ChannelID, Token: tk.ID, Name: tk.Name}
}

func routeGone(s channels.Store, id string) bool {
	_, ok := s.LookupToken([]byte(id))
	return !ok
}

func sortedTokens(ts []channels.Token) bool {
	return sort.SliceIsSorted(ts, func(i, j int) bool {
		if ts[i].Name != ts[j].Name {
			return ts[i].Name < ts[j].Name
		}
		return ts[i].ID < ts[j].ID
	})
}

func drainIDs(ds []channels.Drain) []int64 {
	var ids []int64
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func testReady(t *testing.T, s channels.Store) {
	wctx, cancel := context.WithTimeout(ctx(t), 10*time.Second)
	defer cancel()
	if err := s.WaitReady(wctx); err != nil {
		t.Fatalf("WaitReady = %v", err)
	}
	if !s.Ready() {
		t.Fatal("Ready() = false after WaitReady returned nil")
	}
	s.Close()
	if err := s.WaitReady(ctx(t)); !errors.Is(err, channels.ErrClosed) && s.Ready() {
		t.Fatalf("after Close: WaitReady = %v, Ready = true; want ErrClosed or not ready", err)
	}
}

func testCreateChannel(t *testing.T, s channels.Store) {
	ch, ts, err := s.CreateChannel(ctx(t), "my-app", []string{"web", "app", "web", "heroku"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strconv.ParseUint(ch.ID, 10, 63); err != nil {
		t.Fatalf("channel id %q is not decimal", ch.ID)
	}
	if ch.Name != "my-app" {
		t.Errorf("name = %q", ch.Name)
	}
	if got, want := tokenNames(ts), []string{"app", "heroku", "web"}; !slices.Equal(got, want) {
		t.Fatalf("tokens %v, want one per unique name sorted %v", got, want)
	}
	for _, tk := range ts {
		if !tokenRE.MatchString(tk.ID) || tk.ChannelID != ch.ID {
			t.Errorf("bad token %+v", tk)
		}
	}
	got, err := s.Channel(ctx(t), ch.ID)
	if err != nil || got.ID != ch.ID || got.Name != "my-app" {
		t.Fatalf("Channel = %+v, %v", got, err)
	}
	listed := must[[]channels.Token](t, "ChannelTokens")(s.ChannelTokens(ctx(t), ch.ID))
	if !slices.Equal(listed, ts) {
		t.Fatalf("ChannelTokens = %v, want %v", listed, ts)
	}
	for _, tk := range ts {
		eventually(t, "LookupToken "+tk.Name, func() bool { return routeIs(s, tk) })
	}
	ch2, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ch2.ID == ch.ID {
		t.Fatalf("two channels got id %s", ch.ID)
	}
	_, err = s.Channel(ctx(t), "no-such-channel")
	wantCode(t, "Channel(unknown)", err, channels.CodeNotFound)
	if !routeGone(s, "t.00000000-0000-4000-8000-000000000000") {
		t.Fatal("unknown token found")
	}
	if _, ok := s.LookupToken(nil); ok {
		t.Fatal("empty token found")
	}
}

func testCreateChannelNoTokens(t *testing.T, s channels.Store) {
	ch, ts, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil || len(ts) != 0 {
		t.Fatalf("CreateChannel = %v, %v, %v", ch, ts, err)
	}
	listed := must[[]channels.Token](t, "ChannelTokens")(s.ChannelTokens(ctx(t), ch.ID))
	if len(listed) != 0 {
		t.Fatalf("ChannelTokens = %v", listed)
	}
}

func testPutChannel(t *testing.T, s channels.Store) {
	const id = "app-5f2e2b0c-5c2e-4b8e-9d3a-1c0f2c8f8a11"
	ch, ts, created, err := s.PutChannel(ctx(t), id, []string{"app", "heroku", "app"}, true)
	if err != nil || !created || ch.ID != id {
		t.Fatalf("PutChannel new = %+v, %v, %v", ch, created, err)
	}
	if got := tokenNames(ts); !slices.Equal(got, []string{"app", "heroku"}) {
		t.Fatalf("tokens %v", got)
	}
	first := tokenByName(ts)

	// Same names: same tokens, not created.
	_, ts2, created, err := s.PutChannel(ctx(t), id, []string{"heroku", "app"}, true)
	if err != nil || created {
		t.Fatalf("PutChannel again: created=%v, %v", created, err)
	}
	if !slices.Equal(ts2, ts) {
		t.Fatalf("tokens changed: %v → %v", ts, ts2)
	}

	// New set: keep app, drop heroku, add postgres.
	_, ts3, _, err := s.PutChannel(ctx(t), id, []string{"postgres", "app"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := tokenNames(ts3); !slices.Equal(got, []string{"app", "postgres"}) {
		t.Fatalf("tokens %v", got)
	}
	third := tokenByName(ts3)
	if third["app"] != first["app"] {
		t.Fatalf("app token changed %s → %s", first["app"], third["app"])
	}
	listed := must[[]channels.Token](t, "ChannelTokens")(s.ChannelTokens(ctx(t), id))
	if !slices.Equal(listed, ts3) {
		t.Fatalf("ChannelTokens = %v, want %v", listed, ts3)
	}
	eventually(t, "deleted heroku token stops routing", func() bool { return routeGone(s, first["heroku"]) })
	for _, tk := range ts3 {
		eventually(t, "LookupToken "+tk.Name, func() bool { return routeIs(s, tk) })
	}

	// setTokens=false leaves tokens alone.
	_, ts4, created, err := s.PutChannel(ctx(t), id, []string{"other"}, false)
	if err != nil || created || !slices.Equal(ts4, ts3) {
		t.Fatalf("PutChannel(setTokens=false) = %v, %v, %v", ts4, created, err)
	}
	// Empty set deletes every token.
	_, ts5, _, err := s.PutChannel(ctx(t), id, nil, true)
	if err != nil || len(ts5) != 0 {
		t.Fatalf("PutChannel(empty) = %v, %v", ts5, err)
	}
	// A new channel without tokens.
	ch6, ts6, created, err := s.PutChannel(ctx(t), "v3-empty", nil, false)
	if err != nil || !created || len(ts6) != 0 || ch6.ID != "v3-empty" {
		t.Fatalf("PutChannel(new, no tokens) = %v, %v, %v, %v", ch6, ts6, created, err)
	}
	if _, err := s.Channel(ctx(t), "v3-empty"); err != nil {
		t.Fatal(err)
	}
}

func testDeleteChannel(t *testing.T, s channels.Store) {
	ch, ts, err := s.CreateChannel(ctx(t), "", []string{"app"})
	if err != nil {
		t.Fatal(err)
	}
	d := must[channels.Drain](t, "CreateDrain")(s.CreateDrain(ctx(t), ch.ID, "https://example.org/logs", 0))
	noErr(t, "SetDrainCursor", s.SetDrainCursor(ctx(t), d.ID, channels.Cursor{Epoch: "e", Offset: 9}))
	other, otherTokens, err := s.CreateChannel(ctx(t), "", []string{"app"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "token routes", func() bool { return routeIs(s, ts[0]) })

	if err := s.DeleteChannel(ctx(t), ch.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Channel(ctx(t), ch.ID)
	wantCode(t, "Channel after delete", err, channels.CodeNotFound)
	_, err = s.Drain(ctx(t), d.ID)
	wantCode(t, "Drain after channel delete", err, channels.CodeNotFound)
	if got := must[[]channels.Token](t, "ChannelTokens")(s.ChannelTokens(ctx(t), ch.ID)); len(got) != 0 {
		t.Fatalf("tokens after delete: %v", got)
	}
	if got := must[[]channels.Drain](t, "ChannelDrains")(s.ChannelDrains(ctx(t), ch.ID)); len(got) != 0 {
		t.Fatalf("drains after delete: %v", got)
	}
	if c := must[channels.Cursor](t, "DrainCursor")(s.DrainCursor(ctx(t), d.ID)); c != (channels.Cursor{}) {
		t.Fatalf("cursor after delete: %v", c)
	}
	eventually(t, "deleted token stops routing", func() bool { return routeGone(s, ts[0].ID) })
	wantCode(t, "DeleteChannel again", s.DeleteChannel(ctx(t), ch.ID), channels.CodeNotFound)
	wantCode(t, "DeleteChannel unknown", s.DeleteChannel(ctx(t), "nope"), channels.CodeNotFound)

	// The other channel is untouched.
	if _, err := s.Channel(ctx(t), other.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "other channel's token", func() bool { return routeIs(s, otherTokens[0]) })
}

func testCreateToken(t *testing.T, s channels.Store) {
	ch, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b1 := must[channels.Token](t, "CreateToken")(s.CreateToken(ctx(t), ch.ID, "b"))
	a := must[channels.Token](t, "CreateToken")(s.CreateToken(ctx(t), ch.ID, "a"))
	b2 := must[channels.Token](t, "CreateToken")(s.CreateToken(ctx(t), ch.ID, "b"))
	for _, tk := range []channels.Token{a, b1, b2} {
		if !tokenRE.MatchString(tk.ID) || tk.ChannelID != ch.ID {
			t.Fatalf("bad token %+v", tk)
		}
		eventually(t, "LookupToken "+tk.Name, func() bool { return routeIs(s, tk) })
	}
	if b1.ID == b2.ID {
		t.Fatal("same token twice")
	}
	listed := must[[]channels.Token](t, "ChannelTokens")(s.ChannelTokens(ctx(t), ch.ID))
	if len(listed) != 3 || !sortedTokens(listed) || listed[0] != a {
		t.Fatalf("ChannelTokens = %v, want a then both b sorted by id", listed)
	}

	// The channel need not exist (v1/v2 token endpoints do not check).
	tk := must[channels.Token](t, "CreateToken(no channel)")(s.CreateToken(ctx(t), "424242424", "app"))
	eventually(t, "orphan token routes", func() bool { return routeIs(s, tk) })
}

func testReserveDrain(t *testing.T, s channels.Store) {
	ch, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := must[channels.Drain](t, "ReserveDrain")(s.ReserveDrain(ctx(t), ch.ID))
	if d.ID <= 0 || !drainRE.MatchString(d.Token) || d.URL != "" || d.ChannelID != ch.ID {
		t.Fatalf("ReserveDrain = %+v", d)
	}
	got := must[channels.Drain](t, "Drain")(s.Drain(ctx(t), d.ID))
	if got != d {
		t.Fatalf("Drain = %+v, want %+v", got, d)
	}
	d2 := must[channels.Drain](t, "ReserveDrain")(s.ReserveDrain(ctx(t), ch.ID))
	if d2.ID <= d.ID || d2.Token == d.Token {
		t.Fatalf("second reserve %+v after %+v", d2, d)
	}
	// No channel check.
	d3 := must[channels.Drain](t, "ReserveDrain(no channel)")(s.ReserveDrain(ctx(t), "777777"))
	if d3.ChannelID != "777777" || d3.ID <= d2.ID {
		t.Fatalf("ReserveDrain(no channel) = %+v", d3)
	}
}

func testCreateDrain(t *testing.T, s channels.Store) {
	ch, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateDrain(ctx(t), "no-such-channel", "https://example.org/", 0)
	wantCode(t, "CreateDrain(unknown channel)", err, channels.CodeNotFound)

	d := must[channels.Drain](t, "CreateDrain")(s.CreateDrain(ctx(t), ch.ID, "syslog://logs.example.org:601", 6))
	if d.ID <= 0 || !drainRE.MatchString(d.Token) || d.URL != "syslog://logs.example.org:601" || d.ChannelID != ch.ID {
		t.Fatalf("CreateDrain = %+v", d)
	}
	if got := must[channels.Drain](t, "Drain")(s.Drain(ctx(t), d.ID)); got != d {
		t.Fatalf("Drain = %+v, want %+v", got, d)
	}
	_, err = s.CreateDrain(ctx(t), ch.ID, "syslog://logs.example.org:601", 6)
	wantCode(t, "CreateDrain(duplicate)", err, channels.CodeConflict)
	// Compared normalized: the default port is the same destination.
	_, err = s.CreateDrain(ctx(t), ch.ID, "syslog://logs.example.org", 6)
	wantCode(t, "CreateDrain(duplicate without default port)", err, channels.CodeConflict)
	// But a different path is a different drain, as in Logplex.
	must[channels.Drain](t, "CreateDrain http://a")(s.CreateDrain(ctx(t), ch.ID, "http://a.example.org", 6))
	must[channels.Drain](t, "CreateDrain http://a/")(s.CreateDrain(ctx(t), ch.ID, "http://a.example.org/", 6))
	// The same URL on another channel is fine.
	ch2, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	must[channels.Drain](t, "CreateDrain other channel")(s.CreateDrain(ctx(t), ch2.ID, "syslog://logs.example.org:601", 6))
	_, err = s.Drain(ctx(t), 1<<40)
	wantCode(t, "Drain(unknown)", err, channels.CodeNotFound)
}

func testMaxDrains(t *testing.T, s channels.Store) {
	ch, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Reserved drains (no URL) do not count.
	r := must[channels.Drain](t, "ReserveDrain")(s.ReserveDrain(ctx(t), ch.ID))
	must[channels.Drain](t, "CreateDrain 1")(s.CreateDrain(ctx(t), ch.ID, "https://one.example.org/", 2))
	last := must[channels.Drain](t, "CreateDrain 2")(s.CreateDrain(ctx(t), ch.ID, "https://two.example.org/", 2))
	_, err = s.CreateDrain(ctx(t), ch.ID, "https://three.example.org/", 2)
	wantCode(t, "CreateDrain over max", err, channels.CodeLimit)
	// The limit is checked before a duplicate.
	_, err = s.CreateDrain(ctx(t), ch.ID, "https://one.example.org/", 2)
	wantCode(t, "CreateDrain duplicate over max", err, channels.CodeLimit)
	// 0 = no limit.
	must[channels.Drain](t, "CreateDrain unlimited")(s.CreateDrain(ctx(t), ch.ID, "https://three.example.org/", 0))
	// Filling the reserved drain counts against the max (when given).
	_, err = s.SetDrainURL(ctx(t), ch.ID, r.ID, "https://four.example.org/", 3)
	wantCode(t, "SetDrainURL over max", err, channels.CodeLimit)
	must[channels.Drain](t, "SetDrainURL unchecked")(s.SetDrainURL(ctx(t), ch.ID, r.ID, "https://four.example.org/", 0))
	// Changing the URL of a drain that has one is not a new drain.
	must[channels.Drain](t, "SetDrainURL change")(s.SetDrainURL(ctx(t), ch.ID, last.ID, "https://five.example.org/", 2))
	if n := len(must[[]channels.Drain](t, "ChannelDrains")(s.ChannelDrains(ctx(t), ch.ID))); n != 4 {
		t.Fatalf("%d drains, want 4", n)
	}
}

func testSetDrainOptions(t *testing.T, s channels.Store) {
	ch, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := must[channels.Drain](t, "CreateDrain")(s.CreateDrain(ctx(t), ch.ID, "https://opts.example.org/", 0))
	o := channels.DrainOptions{Filter: `severity <= 4`, Format: channels.FormatRFC5424}
	got := must[channels.Drain](t, "SetDrainOptions")(s.SetDrainOptions(ctx(t), ch.ID, d.ID, o))
	want := d
	want.DrainOptions = o
	if got != want {
		t.Fatalf("SetDrainOptions = %+v, want %+v", got, want)
	}
	if got := must[channels.Drain](t, "Drain")(s.Drain(ctx(t), d.ID)); got != want {
		t.Fatalf("Drain = %+v, want %+v", got, want)
	}
	// A URL change keeps the options.
	want = must[channels.Drain](t, "SetDrainURL")(s.SetDrainURL(ctx(t), ch.ID, d.ID, "https://opts2.example.org/", 0))
	if want.DrainOptions != o {
		t.Fatalf("SetDrainURL dropped the options: %+v", want)
	}
	if got := must[[]channels.Drain](t, "ChannelDrains")(s.ChannelDrains(ctx(t), ch.ID)); len(got) != 1 || got[0] != want {
		t.Fatalf("ChannelDrains = %+v, want [%+v]", got, want)
	}
	// Clearing.
	got = must[channels.Drain](t, "SetDrainOptions clear")(s.SetDrainOptions(ctx(t), ch.ID, d.ID, channels.DrainOptions{}))
	if got.DrainOptions != (channels.DrainOptions{}) || got.URL != want.URL {
		t.Fatalf("SetDrainOptions clear = %+v", got)
	}
	_, err = s.SetDrainOptions(ctx(t), "other", d.ID, o)
	wantCode(t, "SetDrainOptions other channel", err, channels.CodeNotFound)
	_, err = s.SetDrainOptions(ctx(t), ch.ID, d.ID+1000, o)
	wantCode(t, "SetDrainOptions unknown", err, channels.CodeNotFound)
}

func testSetDrainURL(t *testing.T, s channels.Store) {
	ch, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := must[channels.Drain](t, "ReserveDrain")(s.ReserveDrain(ctx(t), ch.ID))
	c := channels.Cursor{Epoch: "ep1", Offset: 42}
	noErr(t, "SetDrainCursor", s.SetDrainCursor(ctx(t), r.ID, c))

	d := must[channels.Drain](t, "SetDrainURL fill")(s.SetDrainURL(ctx(t), ch.ID, r.ID, "https://one.example.org/logs", 6))
	if d.ID != r.ID || d.Token != r.Token || d.URL != "https://one.example.org/logs" || d.ChannelID != ch.ID {
		t.Fatalf("SetDrainURL = %+v (reserved %+v)", d, r)
	}
	d = must[channels.Drain](t, "SetDrainURL change")(s.SetDrainURL(ctx(t), ch.ID, r.ID, "syslog+tls://two.example.org:6514", 6))
	if d.ID != r.ID || d.Token != r.Token || d.URL != "syslog+tls://two.example.org:6514" {
		t.Fatalf("SetDrainURL change = %+v", d)
	}
	if got := must[channels.Drain](t, "Drain")(s.Drain(ctx(t), r.ID)); got != d {
		t.Fatalf("Drain = %+v, want %+v", got, d)
	}
	if got := must[channels.Cursor](t, "DrainCursor")(s.DrainCursor(ctx(t), r.ID)); got != c {
		t.Fatalf("cursor after URL change = %+v, want %+v", got, c)
	}
	// Setting its own URL again is fine.
	must[channels.Drain](t, "SetDrainURL same")(s.SetDrainURL(ctx(t), ch.ID, r.ID, "syslog+tls://two.example.org:6514", 6))

	other := must[channels.Drain](t, "CreateDrain")(s.CreateDrain(ctx(t), ch.ID, "https://three.example.org/", 6))
	_, err = s.SetDrainURL(ctx(t), ch.ID, other.ID, "syslog+tls://two.example.org:6514", 6)
	wantCode(t, "SetDrainURL duplicate", err, channels.CodeConflict)
	_, err = s.SetDrainURL(ctx(t), ch.ID, other.ID, "syslog+tls://two.example.org", 6)
	wantCode(t, "SetDrainURL duplicate (default port)", err, channels.CodeConflict)

	ch2, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.SetDrainURL(ctx(t), ch2.ID, r.ID, "https://four.example.org/", 6)
	wantCode(t, "SetDrainURL other channel's drain", err, channels.CodeNotFound)
	_, err = s.SetDrainURL(ctx(t), ch.ID, 1<<40, "https://four.example.org/", 6)
	wantCode(t, "SetDrainURL unknown drain", err, channels.CodeNotFound)
	if got := must[channels.Drain](t, "Drain")(s.Drain(ctx(t), r.ID)); got != d {
		t.Fatalf("drain changed by failed calls: %+v", got)
	}
}

func testDeleteDrain(t *testing.T, s channels.Store) {
	ch, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ch2, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := must[channels.Drain](t, "CreateDrain")(s.CreateDrain(ctx(t), ch.ID, "https://example.org/", 6))
	noErr(t, "SetDrainCursor", s.SetDrainCursor(ctx(t), d.ID, channels.Cursor{Epoch: "x", Offset: 3}))
	wantCode(t, "DeleteDrain other channel", s.DeleteDrain(ctx(t), ch2.ID, d.ID), channels.CodeNotFound)
	if err := s.DeleteDrain(ctx(t), ch.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Drain(ctx(t), d.ID)
	wantCode(t, "Drain after delete", err, channels.CodeNotFound)
	wantCode(t, "DeleteDrain again", s.DeleteDrain(ctx(t), ch.ID, d.ID), channels.CodeNotFound)
	if c := must[channels.Cursor](t, "DrainCursor")(s.DrainCursor(ctx(t), d.ID)); c != (channels.Cursor{}) {
		t.Fatalf("cursor after delete = %+v", c)
	}
	// The URL is free again; ids are never reused.
	d2 := must[channels.Drain](t, "CreateDrain again")(s.CreateDrain(ctx(t), ch.ID, "https://example.org/", 6))
	if d2.ID <= d.ID {
		t.Fatalf("drain id %d reused or lower than deleted %d", d2.ID, d.ID)
	}
}

func testDrainLists(t *testing.T, s channels.Store) {
	a, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var all, ofA []int64
	for i := range 6 {
		owner := a.ID
		if i%2 == 1 {
			owner = b.ID
		}
		d := must[channels.Drain](t, "CreateDrain")(s.CreateDrain(ctx(t), owner, fmt.Sprintf("https://d%d.example.org/", i), 0))
		all = append(all, d.ID)
		if owner == a.ID {
			ofA = append(ofA, d.ID)
		}
	}
	r := must[channels.Drain](t, "ReserveDrain")(s.ReserveDrain(ctx(t), a.ID))
	all, ofA = append(all, r.ID), append(ofA, r.ID)
	got := drainIDs(must[[]channels.Drain](t, "ChannelDrains")(s.ChannelDrains(ctx(t), a.ID)))
	if !slices.Equal(got, ofA) {
		t.Fatalf("ChannelDrains = %v, want %v", got, ofA)
	}
	got = drainIDs(must[[]channels.Drain](t, "Drains")(s.Drains(ctx(t))))
	if !slices.Equal(got, all) {
		t.Fatalf("Drains = %v, want %v", got, all)
	}
}

func testCursors(t *testing.T, s channels.Store) {
	ch, _, err := s.CreateChannel(ctx(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := must[channels.Drain](t, "CreateDrain")(s.CreateDrain(ctx(t), ch.ID, "https://example.org/", 0))
	if c := must[channels.Cursor](t, "DrainCursor")(s.DrainCursor(ctx(t), d.ID)); c != (channels.Cursor{}) {
		t.Fatalf("fresh drain cursor = %+v", c)
	}
	for i := uint64(1); i <= 50; i++ {
		c := channels.Cursor{Epoch: "ep-" + strconv.FormatUint(i/10, 10), Offset: i}
		if err := s.SetDrainCursor(ctx(t), d.ID, c); err != nil {
			t.Fatal(err)
		}
		if got := must[channels.Cursor](t, "DrainCursor")(s.DrainCursor(ctx(t), d.ID)); got != c {
			t.Fatalf("DrainCursor = %+v, want %+v", got, c)
		}
	}
}

func testCreds(t *testing.T, s channels.Store) {
	a := must[channels.Cred](t, "CreateCred")(s.CreateCred(ctx(t), "ops", true, false))
	b := must[channels.Cred](t, "CreateCred")(s.CreateCred(ctx(t), "shuttle", false, true))
	for _, c := range []channels.Cred{a, b} {
		if !credRE.MatchString(c.ID) || !passRE.MatchString(c.Pass) {
			t.Fatalf("bad cred %q %q", c.ID, c.Pass)
		}
	}
	if a.Name != "ops" || !a.FullAPI || a.AnyChannel || b.FullAPI || !b.AnyChannel {
		t.Fatalf("flags: %+v %+v", a, b)
	}
	if a.ID == b.ID || a.Pass == b.Pass {
		t.Fatal("credentials not unique")
	}
	list := must[[]channels.Cred](t, "Creds")(s.Creds(ctx(t)))
	want := []channels.Cred{a, b}
	slices.SortFunc(want, func(x, y channels.Cred) int { return strings.Compare(x.ID, y.ID) })
	if !slices.Equal(list, want) {
		t.Fatalf("Creds = %v, want %v", list, want)
	}
	for _, c := range want {
		eventually(t, "LookupCred", func() bool { got, ok := s.LookupCred(c.ID); return ok && got == c })
	}
	if _, ok := s.LookupCred("0123456789ABCDEF0123456789ABCDEF"); ok {
		t.Fatal("unknown cred found")
	}
	if err := s.DeleteCred(ctx(t), a.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted cred gone", func() bool { _, ok := s.LookupCred(a.ID); return !ok })
	wantCode(t, "DeleteCred again", s.DeleteCred(ctx(t), a.ID), channels.CodeNotFound)
	list = must[[]channels.Cred](t, "Creds")(s.Creds(ctx(t)))
	if !slices.Equal(list, []channels.Cred{b}) {
		t.Fatalf("Creds after delete = %v", list)
	}
}

func testSessions(t *testing.T, s channels.Store) {
	body := []byte(`{"channel_id":"123","num":"10","tail":true}`)
	sess := must[channels.Session](t, "CreateSession")(s.CreateSession(ctx(t), body, time.Minute))
	if !channels.IsSessionID(sess.ID) || sess.ID != strings.ToLower(sess.ID) {
		t.Fatalf("session id %q", sess.ID)
	}
	if d := time.Until(sess.Expires); d < 50*time.Second || d > 70*time.Second {
		t.Fatalf("expires in %v, want about 1m", d)
	}
	body[0] = 'X' // the store keeps its own copy
	got := must[channels.Session](t, "Session")(s.Session(ctx(t), sess.ID))
	if !bytes.Equal(got.Body, []byte(`{"channel_id":"123","num":"10","tail":true}`)) || got.ID != sess.ID {
		t.Fatalf("Session = %q %q", got.ID, got.Body)
	}
	// Fetched repeatedly until it expires.
	must[channels.Session](t, "Session again")(s.Session(ctx(t), sess.ID))
	_, err := s.Session(ctx(t), "00000000-0000-4000-8000-000000000000")
	wantCode(t, "Session(unknown)", err, channels.CodeNotFound)

	short := must[channels.Session](t, "CreateSession short")(s.CreateSession(ctx(t), []byte(`{}`), 150*time.Millisecond))
	eventuallyWithin(t, 3*time.Second, "short session expires", func() bool {
		_, err := s.Session(ctx(t), short.ID)
		return channels.IsNotFound(err)
	})
	must[channels.Session](t, "long session still there")(s.Session(ctx(t), sess.ID))
}

// waitChange waits for a signal on sub.
func waitChange(t *testing.T, sub <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-sub:
		if !ok {
			t.Fatalf("%s: subscription closed", what)
		}
	case <-time.After(Deadline):
		t.Fatalf("%s: no change signal within %v", what, Deadline)
	}
}

func testChanges(t *testing.T, s channels.Store) {
	steps := []struct {
		name string
		do   func(st *changeState)
	}{
		{"CreateChannel", func(st *changeState) {
			ch, ts, err := s.CreateChannel(ctx(t), "", []string{"app"})
			if err != nil {
				t.Fatal(err)
			}
			st.ch, st.tok = ch, ts[0]
		}},
		{"PutChannel", func(st *changeState) {
			if _, _, _, err := s.PutChannel(ctx(t), st.ch.ID, []string{"app", "web"}, true); err != nil {
				t.Fatal(err)
			}
		}},
		{"CreateToken", func(st *changeState) {
			must[channels.Token](t, "CreateToken")(s.CreateToken(ctx(t), st.ch.ID, "heroku"))
		}},
		{"ReserveDrain", func(st *changeState) {
			st.drain = must[channels.Drain](t, "ReserveDrain")(s.ReserveDrain(ctx(t), st.ch.ID))
		}},
		{"SetDrainURL", func(st *changeState) {
			must[channels.Drain](t, "SetDrainURL")(s.SetDrainURL(ctx(t), st.ch.ID, st.drain.ID, "https://example.org/", 0))
		}},
		{"CreateDrain", func(st *changeState) {
			must[channels.Drain](t, "CreateDrain")(s.CreateDrain(ctx(t), st.ch.ID, "https://other.example.org/", 0))
		}},
		{"DeleteDrain", func(st *changeState) {
			if err := s.DeleteDrain(ctx(t), st.ch.ID, st.drain.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"DeleteChannel", func(st *changeState) {
			if err := s.DeleteChannel(ctx(t), st.ch.ID); err != nil {
				t.Fatal(err)
			}
		}},
	}
	long := s.Changes() // one subscription across all steps
	var st changeState
	for _, step := range steps {
		sub := s.Changes()
		step.do(&st)
		waitChange(t, sub, step.name)
		waitChange(t, long, step.name+" (long-lived subscription)")
		// Let signals of this step (possibly several) arrive before the
		// next step, so that the next wait sees the next step's signal.
		drainSignals(long)
	}
}

type changeState struct {
	ch    channels.Channel
	tok   channels.Token
	drain channels.Drain
}

// drainSignals consumes pending signals for a short quiet period.
func drainSignals(sub <-chan struct{}) {
	for {
		select {
		case <-sub:
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}

func testConcurrentCreateChannel(t *testing.T, s channels.Store) {
	const workers, each = 8, 10
	var (
		mu  sync.Mutex
		ids = map[string]bool{}
		wg  sync.WaitGroup
	)
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				ch, ts, err := s.CreateChannel(ctx(t), "", []string{"app"})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if ids[ch.ID] {
					errs <- fmt.Errorf("channel id %s twice", ch.ID)
				}
				ids[ch.ID] = true
				mu.Unlock()
				if len(ts) != 1 || ts[0].ChannelID != ch.ID {
					errs <- fmt.Errorf("tokens %v for %s", ts, ch.ID)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(ids) != workers*each {
		t.Fatalf("%d ids, want %d", len(ids), workers*each)
	}
}

func testClose(t *testing.T, s channels.Store) {
	sub := s.Changes()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(Deadline)
	for closed := false; !closed; { // a pending signal may come first
		select {
		case _, ok := <-sub:
			closed = !ok
		case <-timeout:
			t.Fatal("Changes subscription not closed by Close")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// testChannelRetention: a channel's own retention is stored with it, kept
// by PutChannel, listed by ChannelRetentions, removed by nil and deleted
// with the channel.
func testChannelRetention(t *testing.T, s channels.Store) {
	if _, err := s.SetChannelRetention(ctx(t), "nope", &channels.ChannelRetention{}); !channels.IsNotFound(err) {
		t.Fatalf("SetChannelRetention(unknown) = %v, want not found", err)
	}
	if _, _, _, err := s.PutChannel(ctx(t), "ret", []string{"a"}, true); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.PutChannel(ctx(t), "plain", nil, false); err != nil {
		t.Fatal(err)
	}
	msgs, age := int64(5000), 24*time.Hour
	want := &channels.ChannelRetention{Messages: &msgs, Age: &age}
	ch, err := s.SetChannelRetention(ctx(t), "ret", want)
	if err != nil || !ch.Retention.Equal(want) {
		t.Fatalf("SetChannelRetention = %+v, %v", ch, err)
	}
	msgs = 1 // the store keeps its own copy
	stored := func() *channels.ChannelRetention {
		c, err := s.Channel(ctx(t), "ret")
		if err != nil {
			t.Fatal(err)
		}
		return c.Retention
	}
	five := int64(5000)
	wantCopy := &channels.ChannelRetention{Messages: &five, Age: &age}
	if r := stored(); !r.Equal(wantCopy) {
		t.Fatalf("Channel().Retention = %+v, want %+v", r, wantCopy)
	}
	if _, _, _, err := s.PutChannel(ctx(t), "ret", []string{"a", "b"}, true); err != nil {
		t.Fatal(err)
	}
	if r := stored(); !r.Equal(wantCopy) {
		t.Fatalf("after PutChannel Retention = %+v, want it kept", r)
	}
	all, err := s.ChannelRetentions(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := all["ret"]; len(all) != 1 || !ok || !r.Equal(wantCopy) {
		t.Fatalf("ChannelRetentions = %+v, want only ret", all)
	}
	// Zero values are given values, not absent ones.
	zero := int64(0)
	if _, err := s.SetChannelRetention(ctx(t), "ret", &channels.ChannelRetention{Bytes: &zero}); err != nil {
		t.Fatal(err)
	}
	if r := stored(); r == nil || r.Bytes == nil || *r.Bytes != 0 || r.Messages != nil || r.Age != nil {
		t.Fatalf("after setting bytes 0: %+v", r)
	}
	if _, err := s.SetChannelRetention(ctx(t), "ret", nil); err != nil {
		t.Fatal(err)
	}
	if r := stored(); r != nil {
		t.Fatalf("after removing: %+v", r)
	}
	if all, _ := s.ChannelRetentions(ctx(t)); len(all) != 0 {
		t.Fatalf("ChannelRetentions after removing = %+v", all)
	}
	if _, err := s.SetChannelRetention(ctx(t), "ret", wantCopy); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteChannel(ctx(t), "ret"); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.ChannelRetentions(ctx(t)); len(all) != 0 {
		t.Fatalf("ChannelRetentions after delete = %+v", all)
	}
	if _, _, _, err := s.PutChannel(ctx(t), "ret", nil, false); err != nil {
		t.Fatal(err)
	}
	if r := stored(); r != nil {
		t.Fatalf("a re-created channel has the old retention %+v", r)
	}
}
