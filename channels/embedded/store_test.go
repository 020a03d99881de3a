package embedded_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
	"github.com/plexus-router/plexus/channels/registry"
	"github.com/plexus-router/plexus/channels/storetest"
)

func openStore(t testing.TB, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.OpenStore(dir)
	if err != nil {
		t.Fatalf("OpenStore(%s) = %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestEmbeddedStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) channels.Store {
		return openStore(t, t.TempDir())
	})
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// population makes records of every kind (and some deleted ones) and
// returns a few of them.
type population struct {
	legacy      channels.Channel
	legacyToks  []channels.Token
	v3          string
	drain       channels.Drain // with URL and cursor
	reserved    channels.Drain
	deleted     channels.Drain // deleted: its id must not come back
	cred        channels.Cred
	session     channels.Session
	deletedChan channels.Channel
}

func populate(t *testing.T, s *embedded.Store) population {
	ctx := context.Background()
	var p population
	var err error
	p.legacy, p.legacyToks, err = s.CreateChannel(ctx, "legacy", []string{"app", "heroku"})
	check(t, "CreateChannel", err)
	p.v3 = "app-8c7f0e1e-8d0c-4a57-a5a4-2b1e2f3c4d5e"
	_, _, _, err = s.PutChannel(ctx, p.v3, []string{"app", "postgres"}, true)
	check(t, "PutChannel", err)
	check(t, "SetChannelFlags", s.SetChannelFlags(ctx, p.v3, []string{"no_tail", "no_redis"}))
	_, _, _, err = s.PutChannel(ctx, p.v3, []string{"app", "web"}, true)
	check(t, "PutChannel again", err)
	_, err = s.CreateToken(ctx, "31337", "orphan")
	check(t, "CreateToken", err)
	p.drain, err = s.CreateDrain(ctx, p.legacy.ID, "https://example.org/a", 6)
	check(t, "CreateDrain", err)
	p.drain, err = s.SetDrainURL(ctx, p.legacy.ID, p.drain.ID, "syslog+tls://example.org:6514#insecure", 6)
	check(t, "SetDrainURL", err)
	check(t, "SetDrainCursor", s.SetDrainCursor(ctx, p.drain.ID, channels.Cursor{Epoch: "e1", Offset: 77}))
	p.reserved, err = s.ReserveDrain(ctx, p.v3)
	check(t, "ReserveDrain", err)
	p.deleted, err = s.CreateDrain(ctx, p.v3, "syslog://x.example.org:601", 0)
	check(t, "CreateDrain", err)
	check(t, "DeleteDrain", s.DeleteDrain(ctx, p.v3, p.deleted.ID))
	p.deletedChan, _, err = s.CreateChannel(ctx, "", []string{"gone"})
	check(t, "CreateChannel", err)
	_, err = s.CreateDrain(ctx, p.deletedChan.ID, "https://gone.example.org/", 0)
	check(t, "CreateDrain", err)
	check(t, "DeleteChannel", s.DeleteChannel(ctx, p.deletedChan.ID))
	p.cred, err = s.CreateCred(ctx, "ops", true, true)
	check(t, "CreateCred", err)
	gone, err := s.CreateCred(ctx, "gone", false, true)
	check(t, "CreateCred", err)
	check(t, "DeleteCred", s.DeleteCred(ctx, gone.ID))
	p.session, err = s.CreateSession(ctx, []byte(`{"channel_id":"1","tail":true}`), time.Hour)
	check(t, "CreateSession", err)
	return p
}

// checkPopulation verifies a reopened store against the population and the
// state s had before, then that counters were not reused.
func checkPopulation(t *testing.T, s *embedded.Store, p population, before registry.State) {
	t.Helper()
	ctx := context.Background()
	after := s.Registry().State(time.Time{})
	if !reflect.DeepEqual(normalize(after), normalize(before)) {
		t.Fatalf("state after reopen:\n%+v\nwant:\n%+v", after, before)
	}
	for _, tk := range p.legacyToks {
		if r, ok := s.LookupToken([]byte(tk.ID)); !ok || r.ChannelID != p.legacy.ID || r.Name != tk.Name {
			t.Fatalf("LookupToken(%s) = %+v, %v", tk, r, ok)
		}
	}
	if c, ok := s.LookupCred(p.cred.ID); !ok || c != p.cred {
		t.Fatalf("LookupCred = %+v, %v", c, ok)
	}
	ch, err := s.Channel(ctx, p.v3)
	if err != nil || !ch.HasFlag("no_tail") || !ch.HasFlag("no_redis") {
		t.Fatalf("v3 channel = %+v, %v", ch, err)
	}
	if sess, err := s.Session(ctx, p.session.ID); err != nil || !bytes.Equal(sess.Body, p.session.Body) || !sess.Expires.Equal(p.session.Expires) {
		t.Fatalf("Session = %+v, %v", sess, err)
	}
	if d, err := s.Drain(ctx, p.drain.ID); err != nil || d != p.drain {
		t.Fatalf("Drain = %+v, %v", d, err)
	}
	// Counters persist: ids are never reused.
	ch2, _, err := s.CreateChannel(ctx, "", nil)
	check(t, "CreateChannel", err)
	if n, _ := strconv.Atoi(ch2.ID); n <= mustAtoi(t, p.deletedChan.ID) {
		t.Fatalf("channel id %s after %s", ch2.ID, p.deletedChan.ID)
	}
	d2, err := s.ReserveDrain(ctx, p.legacy.ID)
	check(t, "ReserveDrain", err)
	if d2.ID <= p.deleted.ID {
		t.Fatalf("drain id %d reused (deleted %d)", d2.ID, p.deleted.ID)
	}
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// normalize makes states comparable with DeepEqual (time locations and
// monotonic readings, nil vs empty).
func normalize(st registry.State) registry.State {
	for i := range st.Sessions {
		st.Sessions[i].Expires = st.Sessions[i].Expires.UTC()
	}
	if len(st.Cursors) == 0 {
		st.Cursors = nil
	}
	return st
}

func TestEmbeddedPersistence(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	p := populate(t, s)
	before := s.Registry().State(time.Time{})
	check(t, "Close", s.Close())

	s = openStore(t, dir)
	if !s.Ready() {
		t.Fatal("not ready after open")
	}
	checkPopulation(t, s, p, before)
}

func TestEmbeddedCrashReplay(t *testing.T) {
	defer embedded.SetStoreIntervalsForTest(20*time.Millisecond, time.Minute)()
	dir := t.TempDir()
	s := openStore(t, dir)
	p := populate(t, s)
	ctx := context.Background()
	// Wait until the cursor is on disk, then move it without a flush.
	waitFor(t, "cursor flushed", func() bool { return cursorOnDisk(t, dir, p.drain.ID) == 77 })
	before := s.Registry().State(time.Time{})
	s.CrashForTest()
	// Written after the last flush: a crash may lose it.
	_ = s.SetDrainCursor(ctx, p.drain.ID, channels.Cursor{Epoch: "e1", Offset: 99})

	s = openStore(t, dir)
	checkPopulation(t, s, p, before)
	if c, _ := s.DrainCursor(ctx, p.drain.ID); c.Offset != 77 {
		t.Fatalf("cursor after crash = %+v, want the last flushed one (77)", c)
	}

	// A cursor set before a flush tick survives a crash once flushed.
	check(t, "SetDrainCursor", s.SetDrainCursor(ctx, p.drain.ID, channels.Cursor{Epoch: "e1", Offset: 120}))
	waitFor(t, "cursor flushed", func() bool { return cursorOnDisk(t, dir, p.drain.ID) == 120 })
	s.CrashForTest()
	s = openStore(t, dir)
	if c, _ := s.DrainCursor(ctx, p.drain.ID); c.Offset != 120 {
		t.Fatalf("cursor = %+v, want 120", c)
	}
}

func cursorOnDisk(t *testing.T, dir string, id int64) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, embedded.CursorsFileForTest))
	if err != nil {
		return 0
	}
	var doc struct{ Cursors map[int64]channels.Cursor }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("cursors file: %v", err)
	}
	return doc.Cursors[id].Offset
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEmbeddedCursorsOfDeletedDrains(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir)
	ch, _, err := s.CreateChannel(ctx, "", nil)
	check(t, "CreateChannel", err)
	d, err := s.CreateDrain(ctx, ch.ID, "https://example.org/", 0)
	check(t, "CreateDrain", err)
	check(t, "SetDrainCursor", s.SetDrainCursor(ctx, d.ID, channels.Cursor{Epoch: "e", Offset: 5}))
	check(t, "Close", s.Close())
	s = openStore(t, dir)
	check(t, "DeleteDrain", s.DeleteDrain(ctx, ch.ID, d.ID))
	// Unknown drains' cursors are ignored.
	check(t, "SetDrainCursor", s.SetDrainCursor(ctx, d.ID, channels.Cursor{Epoch: "e", Offset: 6}))
	check(t, "Close", s.Close())
	if n := cursorOnDisk(t, dir, d.ID); n != 0 {
		t.Fatalf("deleted drain's cursor still on disk: %d", n)
	}
	s = openStore(t, dir)
	if c, _ := s.DrainCursor(ctx, d.ID); c != (channels.Cursor{}) {
		t.Fatalf("cursor = %+v", c)
	}
}

func TestEmbeddedCompaction(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir)
	s.SetCompactMinForTest(4 << 10)
	p := populate(t, s)
	// Churn: the state stays small while the journal would grow.
	maxSize := int64(0)
	compacted := false
	for i := range 300 {
		_, _, _, err := s.PutChannel(ctx, "churn", []string{"a" + strconv.Itoa(i%3)}, true)
		check(t, "PutChannel", err)
		j, snap := s.JournalSizesForTest()
		maxSize = max(maxSize, j)
		if j == snap {
			compacted = true
		}
		if fi, err := os.Stat(filepath.Join(dir, embedded.JournalFileForTest)); err != nil || fi.Size() != j {
			t.Fatalf("journal file size %v (%v), tracked %d", fi.Size(), err, j)
		}
	}
	if !compacted {
		t.Fatal("journal never compacted")
	}
	_, snap := s.JournalSizesForTest()
	if maxSize > 4*snap+2048 || maxSize > 64<<10 {
		t.Fatalf("journal grew to %d bytes with a %d-byte snapshot", maxSize, snap)
	}
	before := s.Registry().State(time.Time{})
	check(t, "Close", s.Close())
	s = openStore(t, dir)
	checkPopulation(t, s, p, before)
}

func TestEmbeddedCompactOnOpen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir)
	for i := range 20 {
		_, _, _, err := s.PutChannel(ctx, "c", []string{strconv.Itoa(i)}, true)
		check(t, "PutChannel", err)
	}
	grown, _ := s.JournalSizesForTest()
	before := s.Registry().State(time.Time{})
	check(t, "Close", s.Close())

	s = openStore(t, dir)
	j, snap := s.JournalSizesForTest()
	if j != snap || j >= grown {
		t.Fatalf("after open journal %d, snapshot %d, before %d: not compacted", j, snap, grown)
	}
	if after := s.Registry().State(time.Time{}); !reflect.DeepEqual(normalize(after), normalize(before)) {
		t.Fatalf("state changed by compaction:\n%+v\n%+v", after, before)
	}
	check(t, "Close", s.Close())
	// An already compact journal is left alone.
	s = openStore(t, dir)
	if j2, _ := s.JournalSizesForTest(); j2 != j {
		t.Fatalf("journal %d → %d on a clean reopen", j, j2)
	}
}

func TestEmbeddedTornWrite(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir)
	p := populate(t, s)
	before := s.Registry().State(time.Time{})
	check(t, "Close", s.Close())

	path := filepath.Join(dir, embedded.JournalFileForTest)
	for _, tail := range []string{
		`{"op":"token","token":{"token":"t.1`, // no newline
		"{\"op\":\"tok\x00\x00\x00\n",         // garbage line
		"\x00\x00\x00\x00",                    // zeros after a crash
	} {
		appendFile(t, path, tail)
		s = openStore(t, dir)
		checkPopulation(t, s, p, before)
		// The tail is gone: the journal takes new entries and replays.
		_, err := s.CreateToken(ctx, p.legacy.ID, "after-torn")
		check(t, "CreateToken", err)
		before = s.Registry().State(time.Time{})
		check(t, "Close", s.Close())
		s = openStore(t, dir)
		if after := s.Registry().State(time.Time{}); !reflect.DeepEqual(normalize(after), normalize(before)) {
			t.Fatalf("tail %q: state after reopen differs", tail)
		}
		check(t, "Close", s.Close())
	}
}

func TestEmbeddedCorruptJournal(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	populate(t, s)
	check(t, "Close", s.Close())
	path := filepath.Join(dir, embedded.JournalFileForTest)
	b, err := os.ReadFile(path)
	check(t, "ReadFile", err)
	lines := strings.SplitAfter(string(b), "\n")
	lines[2] = "{broken\n" // a bad line with more after it is not a torn tail
	check(t, "WriteFile", os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600))
	if s, err := embedded.OpenStore(dir); err == nil {
		s.Close()
		t.Fatal("OpenStore accepted a corrupt journal")
	} else if !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("error %q does not say corrupt", err)
	}
}

func appendFile(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	check(t, "open", err)
	_, err = f.WriteString(s)
	check(t, "write", err)
	check(t, "close", f.Close())
}

func TestEmbeddedLock(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	_, err := embedded.OpenStore(dir)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second OpenStore = %v, want an error saying the directory is in use", err)
	}
	check(t, "Close", s.Close())
	s2 := openStore(t, dir)
	check(t, "Close", s2.Close())
}

func TestEmbeddedClosed(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	ch, ts, err := s.CreateChannel(ctx, "", []string{"app"})
	check(t, "CreateChannel", err)
	check(t, "Close", s.Close())
	if s.Ready() {
		t.Fatal("ready after Close")
	}
	_, _, err = s.CreateChannel(ctx, "", nil)
	if channels.ErrorCode(err) != channels.CodeUnavailable {
		t.Fatalf("CreateChannel after Close = %v", err)
	}
	if err := s.SetDrainCursor(ctx, 1, channels.Cursor{}); err == nil {
		t.Fatal("SetDrainCursor after Close succeeded")
	}
	// Reads keep answering from memory.
	if _, err := s.Channel(ctx, ch.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.LookupToken([]byte(ts[0].ID)); !ok {
		t.Fatal("token lookup after Close")
	}
}

func TestEmbeddedContextCanceled(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.CreateChannel(ctx, "", nil); channels.ErrorCode(err) != channels.CodeUnavailable {
		t.Fatalf("CreateChannel(canceled) = %v", err)
	}
}

func TestEmbeddedSessionsExpire(t *testing.T) {
	defer embedded.SetStoreIntervalsForTest(10*time.Millisecond, 10*time.Millisecond)()
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir)
	_, err := s.CreateSession(ctx, []byte(`{}`), 50*time.Millisecond)
	check(t, "CreateSession", err)
	long, err := s.CreateSession(ctx, []byte(`{"x":1}`), time.Hour)
	check(t, "CreateSession", err)
	// The periodic sweep removes the expired one from memory.
	waitFor(t, "sweep", func() bool { return s.Registry().SessionCount() == 1 })
	check(t, "Close", s.Close())
	s = openStore(t, dir)
	if n := s.Registry().SessionCount(); n != 1 {
		t.Fatalf("%d sessions after reopen, want 1", n)
	}
	if _, err := s.Session(ctx, long.ID); err != nil {
		t.Fatal(err)
	}

	// Expired while closed: dropped on load.
	short, err := s.CreateSession(ctx, []byte(`{}`), 30*time.Millisecond)
	check(t, "CreateSession", err)
	check(t, "Close", s.Close())
	waitFor(t, "expiry", func() bool { return time.Now().After(short.Expires) })
	s = openStore(t, dir)
	if n := s.Registry().SessionCount(); n != 1 {
		t.Fatalf("%d sessions after reopen, want 1", n)
	}
}

func TestEmbeddedLookupTokenAllocs(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	_, ts, err := s.CreateChannel(ctx, "", []string{"app", "heroku"})
	check(t, "CreateChannel", err)
	hit := []byte(ts[0].ID)
	miss := []byte("t.00000000-0000-4000-8000-000000000000")
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := s.LookupToken(hit); !ok {
			t.Fatal("miss")
		}
		if _, ok := s.LookupToken(miss); ok {
			t.Fatal("hit")
		}
	})
	if allocs != 0 {
		t.Fatalf("LookupToken allocates %v times per call pair", allocs)
	}
}

// TestEmbeddedFirstCursorDurable: a drain's first stored position is on
// disk at once, so a crash right after a drain was created does not leave
// it without a position (it would otherwise start at the end of the log
// and skip what came in meanwhile).
func TestEmbeddedFirstCursorDurable(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch, _, err := s.CreateChannel(ctx, "app", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.CreateDrain(ctx, ch.ID, "syslog://127.0.0.1:1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDrainCursor(ctx, d.ID, channels.Cursor{Epoch: "e", Offset: 42}); err != nil {
		t.Fatal(err)
	}
	s.CrashForTest()
	s, err = embedded.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, err := s.DrainCursor(ctx, d.ID); err != nil || c.Offset != 42 || c.Epoch != "e" {
		t.Fatalf("cursor after crash = %+v, %v; want e:42", c, err)
	}
}
