package syslog

import (
	"testing"
	"time"
)

func TestTo5424(t *testing.T) {
	now := time.Date(2024, 3, 5, 10, 11, 12, 345678000, time.UTC)
	nowTS := "2024-03-05T10:11:12.345678+00:00"
	tests := []struct {
		name, msg, want string
		valid           bool // strict RFC 5424 (go-syslog)
	}{
		{"bsd", "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
			"<34>1 2023-10-11T22:14:15.000000+00:00 mymachine su - - - 'su root' failed for lonvick on /dev/pts/8", true},
		{"bsd pid", "<13>Mar  2 15:04:05 myhost sshd[1234]: Accepted publickey",
			"<13>1 2024-03-02T15:04:05.000000+00:00 myhost sshd 1234 - - Accepted publickey", true},
		{"bsd token tag", "<13>Mar  2 15:04:05 myhost " + tok + "[99]: hello world",
			"<13>1 2024-03-02T15:04:05.000000+00:00 myhost " + tok + " 99 - - hello world", true},
		{"no host", "<13>Mar  2 15:04:05 " + tok + ": hello",
			"<13>1 2024-03-02T15:04:05.000000+00:00 - " + tok + " - - - hello", true},
		{"logger local socket", "<13>" + tok + ": hello",
			"<13>1 " + nowTS + " - " + tok + " - - - hello", true},
		{"logger local socket pid", "<13>alice[42]: hi there",
			"<13>1 " + nowTS + " - alice 42 - - hi there", true},
		{"rsyslog forward format", "<30>2024-03-05T09:00:01.123456+01:00 web1 " + tok + "[7]: started",
			"<30>1 2024-03-05T09:00:01.123456+01:00 web1 " + tok + " 7 - - started", true},
		{"rfc3339 no fraction", "<30>2024-03-05T09:00:01Z web1 app[7]: started",
			"<30>1 2024-03-05T09:00:01.000000+00:00 web1 app 7 - - started", true},
		{"rfc3339 no offset", "<30>2024-03-05T09:00:01,5 web1 app[7]: started",
			"<30>1 2024-03-05T09:00:01.500000+00:00 web1 app 7 - - started", true},
		{"rfc3339 offset out of range", "<30>2024-03-05T09:00:01+24:00 web1 app[7]: started",
			"<30>1 " + nowTS + " web1 app 7 - - started", true},
		{"no tag", "<13>Mar  2 15:04:05 myhost just a message",
			"<13>1 2024-03-02T15:04:05.000000+00:00 myhost - - - - just a message", true},
		{"no timestamp no tag", "<13>just a message",
			"<13>1 " + nowTS + " - - - - - just a message", true},
		{"empty msg", "<13>Mar  2 15:04:05 myhost app:",
			"<13>1 2024-03-02T15:04:05.000000+00:00 myhost app - - - ", false},
		{"empty msg after space", "<13>Mar  2 15:04:05 myhost app[3]: ",
			"<13>1 2024-03-02T15:04:05.000000+00:00 myhost app 3 - - ", false},
		{"year rollover", "<13>Dec 31 23:59:59 myhost app: late",
			"<13>1 2023-12-31T23:59:59.000000+00:00 myhost app - - - late", true},
		{"explicit year and fraction", "<13>Mar  2 2021 15:04:05.123 myhost app: x",
			"<13>1 2021-03-02T15:04:05.123000+00:00 myhost app - - - x", true},
		{"tab in message", "<13>Mar  2 15:04:05 myhost app: a\tb",
			"<13>1 2024-03-02T15:04:05.000000+00:00 myhost app - - - a\tb", true},
		{"non-ascii host", "<13>Mar  2 15:04:05 hôst app: x",
			"<13>1 2024-03-02T15:04:05.000000+00:00 h__st app - - - x", true},
		{"already 5424", "<13>1 2024-01-01T00:00:00Z h a p - - m", "<13>1 2024-01-01T00:00:00Z h a p - - m", true},
		{"pri 0", "<0>Mar  2 15:04:05 h app: x", "<0>1 2024-03-02T15:04:05.000000+00:00 h app - - - x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := To5424([]byte("prefix:"), []byte(tt.msg), now)
			if !ok || string(got) != "prefix:"+tt.want {
				t.Fatalf("To5424(%q) =\n%q, %v\nwant\n%q", tt.msg, got, ok, "prefix:"+tt.want)
			}
			out := got[len("prefix:"):]
			if !Is5424(out) {
				t.Errorf("Is5424(%q) = false", out)
			}
			if _, ok := Parse(out); !ok {
				t.Errorf("Parse(%q) failed", out)
			}
			if tt.valid {
				check5424(t, out)
			}
		})
	}
	for _, bad := range []string{"", "hello", "<192>Mar  2 15:04:05 h app: x", "<x>", "<13", "<1234>1 x"} {
		if got, ok := To5424([]byte("p"), []byte(bad), now); ok || string(got) != "p" {
			t.Errorf("To5424(%q) = %q, %v; want failure", bad, got, ok)
		}
	}
}

func TestTo5424Location(t *testing.T) {
	loc := time.FixedZone("X", -5*3600)
	now := time.Date(2024, 3, 5, 10, 11, 12, 0, loc)
	got, _ := To5424(nil, []byte("<13>Mar  2 15:04:05 myhost app: x"), now)
	want := "<13>1 2024-03-02T15:04:05.000000-05:00 myhost app - - - x"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTo5424NoAllocs(t *testing.T) {
	msgs := [][]byte{
		[]byte("<13>Mar  2 15:04:05 myhost sshd[1234]: Accepted publickey for alice"),
		[]byte("<13>Mar  2 15:04:05 myhost " + tok + "[99]: hello world"),
		[]byte("<13>Mar  2 2021 15:04:05.123 myhost app: x"),
		[]byte("<30>2024-03-05T09:00:01.123456+01:00 web1 " + tok + "[7]: started"),
		[]byte("<30>2024-03-05T09:00:01Z web1 app[7]: started"),
		[]byte("<30>2024-03-05T09:00:01 web1 app[7]: started"),
		[]byte("<13>" + tok + ": hello"),
		[]byte("<13>just a message"),
	}
	for _, now := range []time.Time{time.Now(), time.Date(2024, 3, 5, 10, 11, 12, 0, time.FixedZone("X", -5*3600))} {
		buf := make([]byte, 0, 512)
		allocs := testing.AllocsPerRun(100, func() {
			for _, m := range msgs {
				var ok bool
				if buf, ok = To5424(buf[:0], m, now); !ok {
					panic("not converted")
				}
			}
		})
		if allocs != 0 {
			t.Errorf("To5424 (now in %v) allocates %v times per %d lines", now.Location(), allocs, len(msgs))
		}
	}
}

func BenchmarkTo5424(b *testing.B) {
	now := time.Now()
	for _, bc := range []struct{ name, msg string }{
		{"bsd", "<13>Mar  2 15:04:05 myhost sshd[1234]: Accepted publickey for alice"},
		{"token", "<13>Mar  2 15:04:05 myhost " + tok + "[1234]: Accepted publickey for alice"},
		{"rfc3339", "<30>2024-03-05T09:00:01.123456+01:00 web1 " + tok + "[7]: started"},
		{"no timestamp", "<13>" + tok + ": hello"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := []byte(bc.msg)
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = To5424(buf[:0], msg, now)
			}
		})
	}
}
