package router

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
)

type tokenMap map[string]channels.Route

func (m tokenMap) LookupToken(tok []byte) (channels.Route, bool) {
	r, ok := m[string(tok)]
	return r, ok
}

const (
	tokApp    = "t.feff49f1-4d55-4c9e-aee1-2d2b10e69b42"
	tokHeroku = "t.0b8ad4b1-2a3c-4a4d-9f0e-1c2d3e4f5a6b"
	tokOther  = "t.11111111-2222-4333-8444-555555555555"
)

func newTestRouter(t testing.TB) (*Router, *embedded.Log) {
	t.Helper()
	log, err := embedded.OpenLog(embedded.LogConfig{Dir: t.TempDir(), Default: channels.Retention{Count: 1500}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	tokens := tokenMap{
		tokApp:    {ChannelID: "1", Token: tokApp, Name: "app"},
		tokHeroku: {ChannelID: "1", Token: tokHeroku, Name: "heroku"},
		tokOther:  {ChannelID: "2", Token: tokOther, Name: "app"},
	}
	return New(tokens, log, nil), log
}

func readAll(t testing.TB, log channels.Log, ch string) []string {
	t.Helper()
	var recs channels.Records
	if _, err := log.Read(context.Background(), ch, channels.Cursor{}, 0, 0, &recs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := 0; i < recs.Len(); i++ {
		out = append(out, string(recs.At(i).Data))
	}
	return out
}

func TestAddRoutesAndCooks(t *testing.T) {
	r, log := newTestRouter(t)
	in := r.Ingester()
	defer in.Release()
	msgs := []struct {
		msg  string
		want error
	}{
		{"<134>1 2012-12-10T03:00:48.123456Z erlang " + tokApp + " console.1 - - Logsplat test message 1", nil},
		{"<134>1 2012-12-10T03:00:48.123456Z erlang " + tokOther + " web.1 - - for channel 2", nil},
		{"<134>1 2012-12-10T03:00:48.123456Z erlang " + tokHeroku + " router - - heroku line " + tokApp, nil},
		{"<134>1 2012-12-10T03:00:48.123456Z erlang t.00000000-0000-4000-8000-000000000000 web.1 - - unknown", ErrUnknownToken},
		{"<134>1 2012-12-10T03:00:48.123456Z erlang app web.1 - - no token", ErrMalformed},
		{"", ErrMalformed},
	}
	for _, m := range msgs {
		if err := in.Add([]byte(m.msg)); err != m.want {
			t.Errorf("Add(%q) = %v, want %v", m.msg, err, m.want)
		}
	}
	if in.Len() != 3 {
		t.Fatalf("Len = %d, want 3", in.Len())
	}
	if err := in.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	got1 := readAll(t, log, "1")
	want1 := []string{
		"<134>1 2012-12-10T03:00:48.123456Z erlang app console.1 - - Logsplat test message 1",
		// only the token that routed the message is cooked
		"<134>1 2012-12-10T03:00:48.123456Z erlang heroku router - - heroku line " + tokApp,
	}
	if strings.Join(got1, "\n") != strings.Join(want1, "\n") {
		t.Errorf("channel 1 = %q, want %q", got1, want1)
	}
	if got2 := readAll(t, log, "2"); len(got2) != 1 || got2[0] != "<134>1 2012-12-10T03:00:48.123456Z erlang app web.1 - - for channel 2" {
		t.Errorf("channel 2 = %q", got2)
	}
}

func TestAddRouteCooksAuthenticatingToken(t *testing.T) {
	r, log := newTestRouter(t)
	in := r.Ingester()
	defer in.Release()
	rt := channels.Route{ChannelID: "9", Token: tokApp, Name: "app"}
	for _, m := range []string{
		"<134>1 2012-12-10T03:00:48.123456Z host " + tokApp + " web.1 - - in app-name",
		"<134>1 2012-12-10T03:00:48.123456Z host shuttle shuttle - - mentions " + tokApp + " in text",
		"<134>1 2012-12-10T03:00:48.123456Z host " + tokOther + " web.1 - - other token kept",
	} {
		if err := in.AddRoute(rt, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"<134>1 2012-12-10T03:00:48.123456Z host app web.1 - - in app-name",
		"<134>1 2012-12-10T03:00:48.123456Z host shuttle shuttle - - mentions app in text",
		"<134>1 2012-12-10T03:00:48.123456Z host " + tokOther + " web.1 - - other token kept",
	}
	if got := readAll(t, log, "9"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestRFC3164IsStoredAs5424(t *testing.T) {
	r, log := newTestRouter(t)
	in := r.Ingester()
	defer in.Release()
	if err := in.Add([]byte("<13>Nov 21 10:00:00 myhost " + tokApp + "[42]: hello from 3164")); err != nil {
		t.Fatal(err)
	}
	if err := in.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, log, "1")
	if len(got) != 1 || !strings.HasPrefix(got[0], "<13>1 ") || !strings.HasSuffix(got[0], " myhost app 42 - - hello from 3164") {
		t.Errorf("stored %q", got)
	}
}

func TestCommitEmptiesIngester(t *testing.T) {
	r, log := newTestRouter(t)
	in := r.Ingester()
	for i := 0; i < 3; i++ {
		in.Add([]byte(fmt.Sprintf("<134>1 - h %s p - - m%d", tokApp, i)))
		if err := in.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	in.Release()
	if got := readAll(t, log, "1"); len(got) != 3 {
		t.Errorf("stored %d messages, want 3 (each committed once)", len(got))
	}
}

var benchMsg = []byte("<134>1 2026-11-21T10:00:00.000000Z bench.host " + tokApp + " web.1 - - " + strings.Repeat("x", 200-90))

// TestIngestAllocs holds the ingest path to no allocation per message, for
// RFC 5424 lines and for RFC 3164 lines (rewritten as RFC 5424).
func TestIngestAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		msgs [][]byte
	}{
		{"rfc5424", [][]byte{benchMsg}},
		{"rfc3164", [][]byte{
			[]byte("<13>Nov 21 10:00:00 myhost " + tokApp + "[42]: hello from 3164"),
			[]byte("<30>2026-11-21T10:00:00.123456+01:00 web1 " + tokApp + "[7]: rsyslog forward format"),
			[]byte("<13>" + tokOther + ": logger on a local socket"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newTestRouter(t)
			ctx := context.Background()
			in := r.Ingester()
			for _, m := range tc.msgs {
				if err := in.Add(m); err != nil {
					t.Fatalf("Add(%q) = %v", m, err)
				}
			}
			in.Release()
			s := r.NewSink("tcp")
			defer s.Close()
			run := func() {
				for i := 0; i < 64; i++ {
					s.Frame(tc.msgs[i%len(tc.msgs)])
				}
				s.Flush(ctx)
			}
			for i := 0; i < 100; i++ { // warm up segments and batches
				run()
			}
			if a := testing.AllocsPerRun(200, run); a != 0 {
				t.Errorf("frame → token → append: %v allocations per 64 messages, want 0", a)
			}
		})
	}
}

// BenchmarkIngest measures frame → token → channel → append through the
// sink a TCP connection uses, in batches as one read delivers them.
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			r, _ := newTestRouter(b)
			s := r.NewSink("tcp")
			defer s.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(benchMsg)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.Frame(benchMsg)
				if (i+1)%batch == 0 {
					s.Flush(ctx)
				}
			}
			s.Flush(ctx)
		})
	}
}

func BenchmarkIngestParallel(b *testing.B) {
	r, _ := newTestRouter(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchMsg)))
	b.RunParallel(func(pb *testing.PB) {
		s := r.NewSink("tcp")
		defer s.Close()
		ctx := context.Background()
		i := 0
		for pb.Next() {
			s.Frame(benchMsg)
			if i++; i%64 == 0 {
				s.Flush(ctx)
			}
		}
		s.Flush(ctx)
	})
}

// A connection's last token is remembered until the next Commit: tokens
// alternating inside one read go to their own channels, and a token
// deleted between two reads is not routed from memory.
func TestRouteCacheLastsOneCommit(t *testing.T) {
	r, log := newTestRouter(t)
	tokens := r.tokens.(tokenMap)
	in := r.Ingester()
	defer in.Release()
	line := func(tok, text string) []byte {
		return []byte("<134>1 2012-12-10T03:00:48.123456Z host " + tok + " web.1 - - " + text)
	}
	for i := 0; i < 3; i++ {
		for _, tok := range []string{tokApp, tokApp, tokOther, tokHeroku, tokApp} {
			if err := in.Add(line(tok, fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := in.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got1, got2 := len(readAll(t, log, "1")), len(readAll(t, log, "2")); got1 != 12 || got2 != 3 {
		t.Fatalf("channel 1 has %d messages, channel 2 %d; want 12 and 3", got1, got2)
	}
	delete(tokens, tokApp)
	if err := in.Add(line(tokApp, "after delete")); err != ErrUnknownToken {
		t.Fatalf("Add with a deleted token after Commit = %v, want ErrUnknownToken", err)
	}
	if err := in.Add(line(tokHeroku, "still known")); err != nil {
		t.Fatal(err)
	}
	// More tokens than the cache holds, in turn: each message still goes
	// to its own token's channel.
	var many []string
	for k := 0; k < 3*routeCacheSize; k++ {
		tok := fmt.Sprintf("t.00000000-0000-4000-8000-%012d", k)
		tokens[tok] = channels.Route{ChannelID: fmt.Sprint("m", k%5), Token: tok, Name: fmt.Sprint("n", k)}
		many = append(many, tok)
	}
	for i := 0; i < 4; i++ {
		for _, tok := range many {
			if err := in.Add(line(tok, tok)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := in.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 5; c++ {
		msgs := readAll(t, log, fmt.Sprint("m", c))
		for _, m := range msgs {
			var k int
			if _, err := fmt.Sscanf(m[strings.LastIndexByte(m, '-')+1:], "%d", &k); err != nil || k%5 != c || !strings.Contains(m, fmt.Sprintf(" n%d web.1 ", k)) {
				t.Errorf("channel m%d holds %q", c, m)
			}
		}
		want := 0
		for k := range many {
			if k%5 == c {
				want += 4
			}
		}
		if len(msgs) != want {
			t.Errorf("channel m%d holds %d messages, want %d", c, len(msgs), want)
		}
	}
}
