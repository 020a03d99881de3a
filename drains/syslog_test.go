package drains

import (
	"context"
	"crypto/x509"
	"strconv"
	"strings"
	"testing"

	"github.com/plexus-router/plexus/channels"
)

func TestSyslogTCPDelivery(t *testing.T) { forEachBackend(t, testSyslogTCPDelivery) }

func testSyslogTCPDelivery(t *testing.T, open logOpener) {
	e := newEnvOn(t, testConfig(), open)
	r := newSyslogReceiver(t, nil, "")
	e.start()
	d := e.addDrain("syslog://" + r.addr())
	e.waitStarted(d)
	for range 4 {
		e.appendN(25)
	}
	waitFor(t, "100 messages", func() bool { return len(r.stream().msgs) >= 100 })
	wantSeq(t, r.stream().msgs, 0, 100)
	for _, l := range r.syslogLines() {
		if l.Pri != "134" || l.TS != "2024-01-02T03:04:05.000006Z" || l.Host != d.Token || l.App != "app" || l.ProcID != "web.1" {
			t.Fatalf("line %+v", l)
		}
	}
	r.check()
	waitFor(t, "status", func() bool { s, _ := e.m.Status(d.ID); return s.Delivered == 100 && s.LagMessages == 0 })
	id := strconv.FormatInt(d.ID, 10)
	if v, _ := e.metric("plexus_drain_delivered_total", map[string]string{"drain_id": id}); v != 100 {
		t.Errorf("delivered_total = %v, want 100", v)
	}
}

func TestSyslogDownAtStartAndMidStream(t *testing.T) {
	e := newEnv(t, testConfig())
	r1 := newSyslogReceiver(t, nil, "")
	addr := r1.addr()
	r1.close()
	e.start()
	d := e.addDrain("syslog://" + addr)
	e.waitStarted(d)
	e.appendN(10)
	waitFor(t, "a failed attempt", func() bool { s, _ := e.m.Status(d.ID); return s.LastError != "" })
	r2 := newSyslogReceiver(t, nil, addr)
	waitFor(t, "10 messages", func() bool { return len(r2.stream().msgs) >= 10 })
	r2.close()
	e.appendN(10)
	waitFor(t, "another failed attempt", func() bool {
		s, _ := e.m.Status(d.ID)
		return s.LastErrorAt.After(s.LastSuccess)
	})
	e.appendN(10)
	r3 := newSyslogReceiver(t, nil, addr)
	waitFor(t, "20 messages", func() bool { return len(r3.stream().msgs) >= 20 })
	wantSeq(t, r2.stream().msgs, 0, 10)
	wantSeq(t, r3.stream().msgs, 10, 30)
	r2.check()
	r3.check()
}

// TestSyslogRetentionL10: the loss is written in stream position, before
// the next messages.
func TestSyslogRetentionL10(t *testing.T) { forEachBackend(t, testSyslogRetentionL10) }

func testSyslogRetentionL10(t *testing.T, open logOpener) {
	cfg := testConfig()
	cfg.Retention = channels.Retention{Count: 50}
	e := newEnvOn(t, cfg, open)
	r1 := newSyslogReceiver(t, nil, "")
	addr := r1.addr()
	r1.close()
	e.start()
	d := e.addDrain("syslog://" + addr)
	e.waitStarted(d)
	e.appendN(1)
	waitFor(t, "a failed attempt", func() bool { s, _ := e.m.Status(d.ID); return s.LastError != "" })
	for range 5 {
		e.appendN(100)
	}
	r := newSyslogReceiver(t, nil, addr)
	waitFor(t, "everything accounted", func() bool { st := r.stream(); return uint64(len(st.msgs))+st.lost() >= 501 })
	st := r.stream()
	if len(st.l10) != 1 || st.l10[0] == 0 || st.l10[0] > 450 || open == nil && st.l10[0] != 400 {
		t.Fatalf("L10 counts %v, want [400] (the embedded log trims whole batches of 100; 1..450 on other backends)", st.l10)
	}
	wantSeq(t, st.msgs[:1], 0, 1)
	wantSeq(t, st.msgs[1:], 1+int(st.l10[0]), 501)
	lines := r.syslogLines()
	if l := lines[1]; l.Pri != "172" || l.Host != d.Token || l.App != "heroku" || l.ProcID != "logplex" {
		t.Errorf("L10 line %+v", l)
	}
	r.check()
}

func TestSyslogTLS(t *testing.T) {
	good, other, noIP := newTestPKI(t), newTestPKI(t), newTestPKIFor(t, false)
	cfg := testConfig()
	cfg.RootCAs = x509.NewCertPool()
	cfg.RootCAs.AddCert(good.ca)
	cfg.RootCAs.AddCert(noIP.ca)
	e := newEnv(t, cfg)
	e.start()

	ok := newSyslogReceiver(t, &good.cert, "")
	d := e.addDrain("syslog+tls://" + ok.addr())
	e.waitStarted(d)
	e.appendN(10)
	waitFor(t, "10 messages", func() bool { return len(ok.stream().msgs) >= 10 })
	wantSeq(t, ok.stream().msgs, 0, 10)
	ok.check()
	if err := e.store.DeleteDrain(context.Background(), e.ch.ID, d.ID); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		pki  *testPKI
	}{
		{"unknown CA", other},
		{"wrong host", noIP}, // trusted CA, certificate for localhost only
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSyslogReceiver(t, &tc.pki.cert, "")
			d := e.addDrain("syslog+tls://" + r.addr())
			e.waitStarted(d)
			start := e.next
			e.appendN(5)
			waitFor(t, "L14 in the channel log", func() bool {
				for _, m := range e.logMessages() {
					if strings.Contains(m, "Error L14 (certificate validation)") && strings.Contains(m, d.Token) {
						return true
					}
				}
				return false
			})
			s, _ := e.m.Status(d.ID)
			if !strings.Contains(s.LastError, "certificate") {
				t.Errorf("LastError = %q, want a certificate error", s.LastError)
			}
			if n := len(r.stream().msgs); n != 0 {
				t.Errorf("%d messages delivered over an unverified connection", n)
			}
			if _, err := e.store.SetDrainURL(context.Background(), e.ch.ID, d.ID, "syslog+tls://"+r.addr()+"#insecure", 0); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "insecure delivery", func() bool { st := r.stream(); return len(st.msgs) >= 5 && st.l14 >= 1 })
			wantSeq(t, r.stream().msgs, start, start+5)
			if n := r.stream().l14; n != 1 {
				t.Errorf("%d L14 lines, want 1", n)
			}
			id := strconv.FormatInt(d.ID, 10)
			if v, _ := e.metric("plexus_drain_l14_total", map[string]string{"drain_id": id}); v != 1 {
				t.Errorf("l14_total = %v, want 1", v)
			}
			r.check()
			if err := e.store.DeleteDrain(context.Background(), e.ch.ID, d.ID); err != nil {
				t.Fatal(err)
			}
		})
	}
}
