package router

import (
	"context"
	"fmt"
	"testing"

	"github.com/plexus-router/plexus/channels/stats"
)

func TestStatsCounts(t *testing.T) {
	r, _ := newTestRouter(t)
	reg := stats.NewRegistry()
	r.SetStats(reg)
	in := r.Ingester()
	defer in.Release()
	for _, m := range []string{
		"<134>1 2026-11-21T10:00:00Z h " + tokApp + " web.1 - - a",
		"<134>1 2026-11-21T10:00:00Z h " + tokApp + " web.2 - - b",
		"<131>1 2026-11-21T10:00:00Z h " + tokApp + " worker.1 - - c",
		"<13>Nov 21 10:00:00 myhost " + tokHeroku + "[42]: from 3164",
		"<134>1 2026-11-21T10:00:00Z h " + tokOther + " web.1 - - other channel",
	} {
		if err := in.Add([]byte(m)); err != nil {
			t.Fatalf("Add(%q) = %v", m, err)
		}
	}
	if err := in.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, ok := reg.Lookup("1")
	if !ok {
		t.Fatal("no stats for channel 1")
	}
	s := c.Snapshot()
	if s.Total.Received != 4 {
		t.Errorf("channel 1 received %d, want 4", s.Total.Received)
	}
	for k, want := range map[string]uint64{"app": 3, "heroku": 1} {
		if got := s.Sources[k].Total.Received; got != want {
			t.Errorf("sources[%s] = %d, want %d", k, got, want)
		}
	}
	for k, want := range map[string]uint64{"web": 2, "worker": 1, "42": 1} {
		if got := s.ProcessTypes[k].Total.Received; got != want {
			t.Errorf("process_types[%s] = %d, want %d (%v)", k, got, want, s.ProcessTypes)
		}
	}
	for k, want := range map[string]uint64{"6": 2, "3": 1, "5": 1} {
		if got := s.Severities[k].Total.Received; got != want {
			t.Errorf("severities[%s] = %d, want %d", k, got, want)
		}
	}
	if c2, _ := reg.Lookup("2"); c2 == nil || c2.Snapshot().Total.Received != 1 {
		t.Errorf("channel 2 not counted once")
	}
}

// TestIngestAllocsWithStats: counting keeps the ingest path allocation-free.
func TestIngestAllocsWithStats(t *testing.T) {
	r, _ := newTestRouter(t)
	r.SetStats(stats.NewRegistry())
	ctx := context.Background()
	s := r.NewSink("tcp")
	defer s.Close()
	run := func() {
		for i := 0; i < 64; i++ {
			s.Frame(benchMsg)
		}
		s.Flush(ctx)
	}
	for i := 0; i < 100; i++ {
		run()
	}
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Errorf("ingest with stats: %v allocations per 64 messages, want 0", a)
	}
}

// More tallies than one Commit holds (maxTallies: here 20 process types
// by 8 severities), interleaved with a common one: every count adds up.
func TestStatsCountsPastMaxTallies(t *testing.T) {
	r, _ := newTestRouter(t)
	reg := stats.NewRegistry()
	r.SetStats(reg)
	in := r.Ingester()
	defer in.Release()
	const procs, sevs = 20, 8
	for round := 0; round < 2; round++ {
		for k := 0; k < procs; k++ {
			for sev := 0; sev < sevs; sev++ {
				for _, m := range []string{
					"<134>1 2026-11-21T10:00:00Z h " + tokApp + " web.1 - - m",
					fmt.Sprintf("<%d>1 2026-11-21T10:00:00Z h %s p%d.1 - - m", 8+sev, tokApp, k),
				} {
					if err := in.Add([]byte(m)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if err := in.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, _ := reg.Lookup("1")
	s := c.Snapshot()
	const each = 2 * procs * sevs
	if s.Total.Received != 2*each || s.ProcessTypes["web"].Total.Received != each {
		t.Fatalf("received %d (web %d), want %d (web %d)", s.Total.Received, s.ProcessTypes["web"].Total.Received, 2*each, each)
	}
	for k := 0; k < procs; k++ {
		if got := s.ProcessTypes[fmt.Sprintf("p%d", k)].Total.Received; got != 2*sevs {
			t.Fatalf("process type p%d counted %d times, want %d", k, got, 2*sevs)
		}
	}
	for sev := 0; sev < sevs; sev++ {
		want := uint64(2 * procs)
		if sev == 6 {
			want += each // web.1 is <134>: severity 6
		}
		if got := s.Severities[fmt.Sprint(sev)].Total.Received; got != want {
			t.Fatalf("severity %d counted %d times, want %d", sev, got, want)
		}
	}
}
