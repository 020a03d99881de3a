package drains

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/stats"
	"github.com/plexus-router/plexus/syslog/filter"
)

func (e *env) addDrainWith(url string, o channels.DrainOptions) channels.Drain {
	e.t.Helper()
	d, err := e.store.ReserveDrain(context.Background(), e.ch.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.SetDrainOptions(context.Background(), e.ch.ID, d.ID, o); err != nil {
		e.t.Fatal(err)
	}
	d, err = e.store.SetDrainURL(context.Background(), e.ch.ID, d.ID, url, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// A filtered drain receives only the matching messages, in order; the
// others are counted as filtered, not lost.
func TestFilteredDrain(t *testing.T) {
	e := newEnv(t, testConfig())
	e.stats = stats.NewRegistry()
	r := newHTTPReceiver(t, nil, nil)
	e.start()
	d := e.addDrainWith(r.url("/"), channels.DrainOptions{Filter: `msg endsWith "0"`})
	e.waitStarted(d)
	for range 4 {
		e.appendN(25)
	}
	waitFor(t, "10 messages", func() bool { return len(r.stream().msgs) >= 10 })
	waitFor(t, "90 filtered", func() bool {
		v, _ := e.metric("plexus_drain_filtered_total", map[string]string{"drain_id": strconv.FormatInt(d.ID, 10)})
		return v == 90
	})
	r.check()
	got := r.stream().msgs
	if len(got) != 10 {
		t.Fatalf("%d messages delivered, want 10: %v", len(got), summary(got))
	}
	for i, m := range got {
		if want := msg(i * 10); m != want {
			t.Errorf("message %d = %q, want %q", i, m, want)
		}
	}
	s := e.stats.Channel(e.ch.ID).Snapshot()
	if got := s.Total.Dropped["filter"]; got != 90 {
		t.Errorf("stats: %d dropped by the filter, want 90", got)
	}
	if got := s.Sources["app"].Total.Dropped["filter"]; got != 90 {
		t.Errorf("stats: sources[app] %d dropped by the filter, want 90", got)
	}
	if v, _ := e.metric("plexus_drain_dropped_total", map[string]string{"drain_id": strconv.FormatInt(d.ID, 10)}); v != 0 {
		t.Errorf("plexus_drain_dropped_total = %v, want 0", v)
	}
}

// The rfc5424 format delivers messages as stored: HOSTNAME and SD kept.
func TestRFC5424Format(t *testing.T) {
	e := newEnv(t, testConfig())
	r := newHTTPReceiver(t, nil, nil)
	s := newSyslogReceiver(t, nil, "")
	e.start()
	o := channels.DrainOptions{Format: channels.FormatRFC5424}
	dh := e.addDrainWith(r.url("/"), o)
	ds := e.addDrainWith("syslog://"+s.addr(), o)
	e.waitStarted(dh)
	e.waitStarted(ds)
	const stored = `<13>1 2024-05-01T10:00:00Z myhost nginx 812 - [origin@123 ip="1.2.3.4"] GET /`
	b := &channels.Batch{ChannelID: e.ch.ID, Time: time.Now().UnixNano()}
	b.Add([]byte(stored))
	if err := e.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "HTTP request", func() bool { return len(r.requests()) > 0 })
	if got, want := string(r.requests()[0].Body), strconv.Itoa(len(stored))+" "+stored; got != want {
		t.Errorf("HTTP body = %q, want %q", got, want)
	}
	waitFor(t, "syslog frame", func() bool { return len(s.allFrames()) > 0 })
	if got, want := s.allFrames()[0], stored+"\n"; got != want {
		t.Errorf("syslog frame = %q, want %q", got, want)
	}
}

// BenchmarkSyslogEncodeFiltered compares a syslog drain's batch encoding
// without and with a filter that every message passes (the same output),
// so the difference is the filter's cost.
func BenchmarkSyslogEncodeFiltered(b *testing.B) {
	for _, bm := range []struct{ name, expr string }{
		{"none", ""},
		{"severity", `severity <= 6`},
		{"app", `app == "app"`},
		{"contains", `msg contains "xxx"`},
	} {
		b.Run("filter="+bm.name, func(b *testing.B) {
			f := &format{token: goldenToken, target: maxSyslogWrite}
			if bm.expr != "" {
				m, err := filter.Compile(bm.expr)
				if err != nil {
					b.Fatal(err)
				}
				f.match = m
			}
			benchmarkEncode(b, f)
		})
	}
}

// BenchmarkDrainSyslogTCPFilter: MemLog → manager → syslog TCP receiver,
// without and with a filter every message passes (the target: a
// filtered syslog drain within 10 % of the unfiltered throughput).
func BenchmarkDrainSyslogTCPFilter(b *testing.B) {
	for _, expr := range []string{"", `severity <= 6`} {
		b.Run("filter="+strconv.Quote(expr), func(b *testing.B) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var got counts
			var wg sync.WaitGroup
			defer wg.Wait()
			defer l.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				br := bufio.NewReaderSize(c, 256<<10)
				buf := make([]byte, 64<<10)
				for {
					s, err := br.ReadSlice(' ')
					if err != nil {
						return
					}
					n, _ := strconv.Atoi(string(s[:len(s)-1]))
					if _, err := io.ReadFull(br, buf[:n]); err != nil {
						return
					}
					got.frame(buf[:n])
				}
			}()
			e := newEnv(b, benchConfig())
			e.start()
			d := e.addDrainWith("syslog://"+l.Addr().String(), channels.DrainOptions{Filter: expr})
			e.waitStarted(d)
			benchAppend(b, e, &got)
			e.stop()
		})
	}
}
