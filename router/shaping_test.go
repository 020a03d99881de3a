package router

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
	"github.com/plexus-router/plexus/syslog"
)

// limitedRouter routes tokApp to channel "1" with limiter l1 and tokOther
// to channel "2" with l2; the clock is fixed at *now.
func limitedRouter(t *testing.T, l1, l2 *channels.Limiter) (*Router, *embedded.Log, *time.Time) {
	t.Helper()
	log, err := embedded.OpenLog(embedded.LogConfig{Dir: t.TempDir(), Default: channels.Retention{Count: 100000}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	r := New(tokenMap{
		tokApp:    {ChannelID: "1", Token: tokApp, Name: "app", Limiter: l1},
		tokHeroku: {ChannelID: "1", Token: tokHeroku, Name: "heroku", Limiter: l1},
		tokOther:  {ChannelID: "2", Token: tokOther, Name: "app", Limiter: l2},
	}, log, NewMetrics(prometheus.NewRegistry()))
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	return r, log, &now
}

func msgFor(tok string, i int) []byte {
	return []byte("<134>1 2026-11-29T12:00:00Z host " + tok + " web.1 - - message " + strconv.Itoa(i))
}

var l16RE = regexp.MustCompile(`^<172>1 \S+ plexus heroku logplex - - Error L16 \(Rate limit\) -> This channel dropped (\d+) messages since \S+\.$`)

// countL16 returns the messages and the sum of the L16 counts of a channel.
func countL16(t *testing.T, log channels.Log, ch string) (plain, dropped int) {
	t.Helper()
	for _, m := range readAll(t, log, ch) {
		if g := l16RE.FindStringSubmatch(m); g != nil {
			n, _ := strconv.Atoi(g[1])
			dropped += n
		} else {
			plain++
		}
	}
	return
}

func TestSinkRateLimitDropsAndNotices(t *testing.T) {
	l1, l2 := channels.NewLimiter("1"), channels.NewLimiter("2")
	r, log, now := limitedRouter(t, l1, l2)
	r.SetDefaultRateLimit(channels.RateLimit{MessagesPerS: 10}) // channel 2: burst 10
	l1.Set(&channels.RateLimit{MessagesPerS: 100, Burst: 20})
	s := r.NewSink("tcp")
	defer s.Close()
	ctx := context.Background()
	stored := 0
	for sec := 0; sec < 3; sec++ {
		for i := range 200 {
			s.Frame(msgFor(tokApp, i))
		}
		for i := range 5 {
			s.Frame(msgFor(tokOther, i))
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		r.WriteNotices(ctx)
		*now = now.Add(time.Second)
	}
	// Channel 1: 20 per read (the bucket holds 20 and refills within the
	// second between reads); channel 2 stays under 10/s.
	stored = 3 * 20
	plain, dropped := countL16(t, log, "1")
	if plain != stored || dropped != 600-stored {
		t.Errorf("channel 1: %d stored, L16 counts add up to %d; want %d and %d", plain, dropped, stored, 600-stored)
	}
	if uint64(dropped) != l1.Total() {
		t.Errorf("L16 counts %d, limiter total %d", dropped, l1.Total())
	}
	if plain, dropped := countL16(t, log, "2"); plain != 15 || dropped != 0 {
		t.Errorf("channel 2: %d stored, %d dropped; want 15, 0", plain, dropped)
	}
	got := counterValue(r.metrics.dropped.WithLabelValues("tcp", "rate_limit"))
	if got != float64(600-stored) {
		t.Errorf("dropped{rate_limit} = %v, want %d", got, 600-stored)
	}
	// No new drops: no new notice.
	r.WriteNotices(ctx)
	if _, d := countL16(t, log, "1"); d != dropped {
		t.Errorf("a notice without drops")
	}
	// Top offenders: channel 1 only.
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "plexus_ratelimit_top_dropped_total" {
			if len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetCounter().GetValue() != float64(dropped) {
				t.Errorf("top offenders: %v", mf)
			}
		}
	}
}

func TestSinkRateLimitNoAllocations(t *testing.T) {
	l1 := channels.NewLimiter("1")
	r, _, _ := limitedRouter(t, l1, channels.NewLimiter("2"))
	l1.Set(&channels.RateLimit{MessagesPerS: 1e9, BytesPerS: 1e12})
	s := r.NewSink("tcp")
	defer s.Close()
	ctx := context.Background()
	msg := msgFor(tokApp, 1)
	run := func() {
		for range 64 {
			s.Frame(msg)
		}
		s.Flush(ctx)
	}
	for range 100 {
		run()
	}
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Errorf("limited ingest: %v allocations per 64 messages, want 0", a)
	}
}

func TestTakeLimitsAllOrNothing(t *testing.T) {
	l1, l2 := channels.NewLimiter("1"), channels.NewLimiter("2")
	r, log, _ := limitedRouter(t, l1, l2)
	l1.Set(&channels.RateLimit{MessagesPerS: 100})
	l2.Set(&channels.RateLimit{MessagesPerS: 2, Burst: 4})
	if ok, _ := l2.Take(r.now().UnixNano(), 3, 0, nil); !ok { // one message left
		t.Fatal("Take 3 of 4")
	}
	ctx := context.Background()
	in := r.Ingester()
	defer in.Release()
	for i := range 3 {
		in.Add(msgFor(tokApp, i))
		in.Add(msgFor(tokOther, i))
	}
	ok, retry := in.TakeLimits()
	if ok || retry <= 0 {
		t.Fatalf("TakeLimits = %v, %v; want refused with a wait", ok, retry)
	}
	in.Release()
	in = r.Ingester()
	// Channel 1's 3 messages were given back: 100 fit.
	for i := range 100 {
		in.Add(msgFor(tokApp, i))
	}
	if ok, _ := in.TakeLimits(); !ok {
		t.Fatal("channel 1 alone refused: the refused request was not refunded")
	}
	if err := in.CommitDurable(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, log, "2")); n != 0 {
		t.Errorf("channel 2 has %d messages of a refused request", n)
	}
}

func TestFirehose(t *testing.T) {
	log, err := embedded.OpenLog(embedded.LogConfig{Dir: t.TempDir(), Default: channels.Retention{Count: 100000}})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	const tokHose = "t.99999999-2222-4333-8444-555555555555"
	r := New(tokenMap{
		tokApp:    {ChannelID: "1", Token: tokApp, Name: "app"},
		tokHeroku: {ChannelID: "1", Token: tokHeroku, Name: "heroku"},
		tokOther:  {ChannelID: "2", Token: tokOther, Name: "heroku"},
		tokHose:   {ChannelID: "fh1", Token: tokHose, Name: "heroku"},
	}, log, nil)
	reg := prometheus.NewRegistry()
	r.SetFirehose([]string{"fh1", "fh2"}, []string{"heroku"}, reg)
	s := r.NewSink("tcp")
	defer s.Close()
	const n = 2000
	for i := range n {
		s.Frame(msgFor(tokHeroku, i))
		s.Frame(msgFor(tokApp, i))
		s.Frame(msgFor(tokOther, i))
		s.Frame(msgFor(tokHose, i))
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	h1, h2 := readAll(t, log, "fh1"), readAll(t, log, "fh2")
	var copies, raw int
	for _, m := range append(h1, h2...) {
		if strings.Contains(m, tokHeroku) || strings.Contains(m, tokOther) {
			copies++
		}
		if strings.Contains(m, " heroku web.1") && !strings.Contains(m, tokHose) {
			raw++ // a cooked copy would name the token
		}
	}
	// fh1 also holds its own n messages (cooked), never re-firehosed.
	if copies != 2*n || len(h1)+len(h2) != 3*n {
		t.Errorf("firehose: %d raw copies in %d+%d messages; want %d copies and %d messages", copies, len(h1), len(h2), 2*n, 3*n)
	}
	if len(h2) < n/2 || len(h2) > 3*n/2 {
		t.Errorf("fh2 got %d of %d copies: not split between the firehoses", len(h2), 2*n)
	}
	if raw != n {
		t.Errorf("%d cooked messages in the firehoses, want only fh1's own %d", raw, n)
	}
	// The channels themselves got their cooked messages.
	if got := len(readAll(t, log, "1")); got != 2*n {
		t.Errorf("channel 1: %d messages, want %d", got, 2*n)
	}
	if got := counterValue(r.fh.posts[0]) + counterValue(r.fh.posts[1]); got != 2*n {
		t.Errorf("plexus_firehose_posts_total = %v, want %d", got, 2*n)
	}
}

func TestMetricsChannel(t *testing.T) {
	log, err := embedded.OpenLog(embedded.LogConfig{Dir: t.TempDir(), Default: channels.Retention{Count: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Count("http", 5, 4, "malformed")
	mc := &MetricsChannel{ChannelID: "metrics", Node: "n1", Gatherer: reg, Log: log}
	ctx := context.Background()
	if err := mc.Report(ctx); err != nil {
		t.Fatal(err)
	}
	m.Count("tcp", 3, 3, "")
	if err := mc.Report(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, log, "metrics")
	want := []string{
		"counter=message_received value=5 total=5", "counter=message_processed value=4 total=4",
		"counter=drain_delivered value=0 total=0", "counter=drain_dropped value=0 total=0",
		"counter=message_received value=3 total=8", "counter=message_processed value=3 total=7",
		"counter=drain_delivered value=0 total=0", "counter=drain_dropped value=0 total=0",
	}
	if len(got) != len(want) {
		t.Fatalf("metrics channel has %d lines, want %d: %q", len(got), len(want), got)
	}
	line := regexp.MustCompile(`^<190>1 \S+ plexus plexus metrics - - plexus_stats node=n1 (.*)$`)
	for i, g := range got {
		m := line.FindStringSubmatch(g)
		if m == nil || m[1] != want[i] {
			t.Errorf("line %d = %q, want ... %q", i, g, want[i])
		}
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// Two connections of one channel interleaved: leases admit exactly what
// the bucket holds, no more and no fewer, and what a connection leased
// but did not use goes back at its Commit.
func TestSinkRateLimitLeasesAddUp(t *testing.T) {
	l1 := channels.NewLimiter("1")
	r, log, now := limitedRouter(t, l1, channels.NewLimiter("2"))
	l1.Set(&channels.RateLimit{MessagesPerS: 1000, BytesPerS: 1e9})
	a, b := r.NewSink("tcp"), r.NewSink("tcp")
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	for i := range 2000 {
		a.Frame(msgFor(tokApp, i))
		b.Frame(msgFor(tokHeroku, i))
	}
	for _, s := range []syslog.Sink{a, b} {
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if plain := len(readAll(t, log, "1")); plain != 1000 || l1.Total() != 3000 {
		t.Fatalf("stored %d, dropped %d of 4000 with a bucket of 1000; want 1000 and 3000", plain, l1.Total())
	}
	// A second later the bucket is full again. Connection a takes 10
	// messages and commits: the rest of its lease goes back, so b can
	// still take the other 990.
	*now = now.Add(time.Second)
	for i := range 10 {
		a.Frame(msgFor(tokApp, i))
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		b.Frame(msgFor(tokHeroku, i))
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if plain := len(readAll(t, log, "1")); plain != 2000 || l1.Total() != 3010 {
		t.Fatalf("stored %d, dropped %d; want 2000 and 3010", plain, l1.Total())
	}
}
