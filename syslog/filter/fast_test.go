package filter

import (
	"testing"

	"github.com/plexus-router/plexus/syslog"
)

// onVM compiles src with the fast path turned off: the reference.
func onVM(t testing.TB, src string) *Matcher {
	t.Helper()
	m, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	m.fast = nil
	return m
}

var corpus = []string{
	msgWeb, msgErr, msgNoMsg,
	`<0>1 - - - - - -`,
	`<191>1 2024-05-01T08:00:00.2Z h app p m - web.1 GET /`,
	`<13>1 2024-05-01T08:00:00Z myhost web web.1 - - GET /apix`,
	`<13>1 2024-05-01T08:00:00Z web web web - - `,
	`<13>1 bad-time h a p m - x`,
	`<134>1 2024-05-01T08:00:00Z h worker - - - ünïcode ✓`,
	"not syslog",
}

// fastCases are expressions the fast path must take (and agree with the VM
// on), next to some it must leave to the VM.
var fastCases = []struct {
	expr string
	fast bool
}{
	{`severity <= 4`, true},
	{`4 >= severity`, true},
	{`severity == 5 && facility == 1`, true},
	{`severity != 3 || facility > 10`, true},
	{`severity < 0 or facility >= 16`, true},
	{`severity in [3, 5]`, true},
	{`severity not in [3, 5]`, true},
	{`app == "web"`, true},
	{`"web" == app`, true},
	{`app != "nope" && severity <= 6`, true},
	{`severity <= 6 && app != "nope"`, true},
	{`app in ["web", "worker"]`, true},
	{`app not in ["web", "worker"]`, true},
	{`procid startsWith "web."`, true},
	{`msg endsWith "200"`, true},
	{`msg contains "GET" and not (hostname == "web")`, true},
	{`!(msg contains "timeout")`, true},
	{`msg matches "^GET /api/[a-z]+"`, true},
	{`msg matches "(?i)get"`, true},
	{`hostname < "n"`, true},
	{`"n" <= msgid`, true},
	{`msgid == "-"`, true},
	{`msg == ""`, true},
	{`true`, true},
	{`false || app == "web"`, true},
	{`1 < 2 && app == "web"`, false}, // not folded by expr: a constant comparison
	{`time > date("2024-05-01T08:00:00Z")`, true},
	{`time <= date("2024-05-01T08:00:00.2Z")`, true},
	{`time == date("2024-05-01T08:00:00Z") || time != date("2024-05-01T10:00:00+02:00")`, true},
	{`date("2024-05-01T08:00:00Z") < time`, true},
	{`time >= date("2024-05-01T08:00:00Z") and time < date("2024-05-01T08:00:00.2Z")`, true},

	// The VM's: functions, field against field, arithmetic, non-constant
	// patterns, floats, mixed types.
	{`sd("origin@123", "ip") == "1.2.3.4"`, false},
	{`sd["origin@123"]["ip"] == "1.2.3.4"`, false},
	{`app == hostname`, false},
	{`severity + 1 <= 5`, false},
	{`msg matches app`, false},
	{`severity <= 4.5`, false},
	{`len(msg) > 3`, false},
	{`app in [hostname, "x"]`, false},
	{`lower(app) == "web"`, false},
	{`severity <= 4 ? app == "web" : true`, false},
	{`app in []`, false},
}

func TestFastPathAgrees(t *testing.T) {
	for _, tt := range fastCases {
		m, err := Compile(tt.expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.expr, err)
		}
		if (m.fast != nil) != tt.fast {
			t.Errorf("%q: fast path %v, want %v", tt.expr, m.fast != nil, tt.fast)
		}
		ref := onVM(t, tt.expr)
		for _, msg := range corpus {
			if got, want := m.Match([]byte(msg)), ref.Match([]byte(msg)); got != want {
				t.Errorf("%q on %q: fast path %v, VM %v", tt.expr, msg, got, want)
			}
		}
	}
}

// FuzzFastPath: for any expression the fast path takes, it answers what
// expr's VM answers, on any message.
func FuzzFastPath(f *testing.F) {
	for _, tt := range fastCases {
		for _, msg := range corpus {
			f.Add(tt.expr, msg)
		}
	}
	f.Fuzz(func(t *testing.T, src, msg string) {
		m, err := Compile(src)
		if err != nil || m.fast == nil {
			return
		}
		ref := onVM(t, src)
		if got, want := m.Match([]byte(msg)), ref.Match([]byte(msg)); got != want {
			t.Fatalf("%q on %q: fast path %v, VM %v", src, msg, got, want)
		}
	})
}

func BenchmarkFilterVM(b *testing.B) {
	msg := []byte(msgWeb)
	for _, bm := range []struct{ name, expr string }{
		{"severity", `severity <= 4`},
		{"bench", `severity <= 6 && app != "nope"`},
	} {
		b.Run(bm.name, func(b *testing.B) {
			m := onVM(b, bm.expr)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				m.Match(msg)
			}
		})
	}
}

// BenchmarkMatchFields: the filter's own cost per message, without the
// parse (a drain has the fields already), on the fast path and on the VM.
func BenchmarkMatchFields(b *testing.B) {
	f, ok := syslog.Parse([]byte(msgWeb))
	if !ok {
		b.Fatal("parse")
	}
	for _, bm := range []struct{ name, expr string }{
		{"severity", `severity <= 4`},
		{"bench", `severity <= 6 && app != "nope"`},
		{"contains", `msg contains "users"`},
	} {
		for _, vm := range []bool{false, true} {
			name := bm.name + "/fast"
			if vm {
				name = bm.name + "/vm"
			}
			b.Run(name, func(b *testing.B) {
				m := onVM(b, bm.expr)
				if !vm {
					m, _ = Compile(bm.expr)
				}
				b.ReportAllocs()
				for b.Loop() {
					m.MatchFields(f)
				}
			})
		}
	}
}
