package filter

import (
	"errors"
	"testing"
	"time"
)

const (
	msgWeb   = `<13>1 2024-05-01T10:00:00.123+02:00 myhost web web.1 req42 [origin@123 ip="1.2.3.4" path="a\"b"][meta x="y"] GET /api/users 200`
	msgErr   = `<11>1 2024-05-01T08:00:01Z otherhost api api.2 - - timeout talking to db`
	msgNoMsg = `<190>1 2024-05-01T08:00:01Z h router - -`
)

func TestMatch(t *testing.T) {
	tests := []struct {
		expr string
		msg  string
		want bool
	}{
		{`severity <= 4`, msgWeb, false}, // <13>: facility 1, severity 5
		{`severity <= 4`, msgErr, true},  // <11>: severity 3
		{`severity == 5 && facility == 1`, msgWeb, true},
		{`facility == 23 && severity == 6`, msgNoMsg, true},
		{`app == "web"`, msgWeb, true},
		{`app == "web"`, msgErr, false},
		{`procid == "web.1"`, msgWeb, true},
		{`procid startsWith "api."`, msgErr, true},
		{`hostname == "myhost"`, msgWeb, true},
		{`msgid == "req42"`, msgWeb, true},
		{`msgid == "-"`, msgErr, true},
		{`msg contains "timeout"`, msgErr, true},
		{`msg contains "timeout"`, msgWeb, false},
		{`msg startsWith "GET "`, msgWeb, true},
		{`msg endsWith "200"`, msgWeb, true},
		{`msg matches "^GET /api/[a-z]+ 2\\d\\d$"`, msgWeb, true},
		{`msg == ""`, msgNoMsg, true},
		{`app in ["web", "worker"]`, msgWeb, true},
		{`app not in ["web", "worker"]`, msgErr, true},
		{`sd("origin@123", "ip") == "1.2.3.4"`, msgWeb, true},
		{`sd["origin@123"]["ip"] == "1.2.3.4"`, msgWeb, true},
		{`sd("origin@123", "path") == "a\"b"`, msgWeb, true},
		{`sd("meta", "x") == "y"`, msgWeb, true},
		{`sd("meta", "ip") == ""`, msgWeb, true},
		{`sd("origin@123", "ip") == ""`, msgErr, true},
		{`time > date("2024-05-01T08:00:01Z")`, msgWeb, false}, // 10:00:00.123+02:00 is 08:00:00.123Z
		{`time > date("2024-05-01T08:00:00Z")`, msgWeb, true},
		{`time < date("2024-05-01T08:00:00.2Z")`, msgWeb, true},
		{`time > date("2024-05-01T08:00:00Z", "2006-01-02T15:04:05Z07:00")`, msgWeb, true},
		{`time > date("2024-05-01T08:00:00Z")`, msgErr, true},
		{`!(severity > 3) || app == "nope"`, msgErr, true},
		{`true`, "not syslog", false}, // unparseable never passes
	}
	for _, tt := range tests {
		m, err := Compile(tt.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", tt.expr, err)
			continue
		}
		if got := m.Match([]byte(tt.msg)); got != tt.want {
			t.Errorf("Compile(%q).Match(%q) = %v, want %v", tt.expr, tt.msg, got, tt.want)
		}
	}
}

func TestCompileError(t *testing.T) {
	tests := []struct {
		expr       string
		line, col  int
		messageHas string
	}{
		{`severity <== 4`, 1, 12, "unexpected token"},
		{`sevrity <= 4`, 1, 1, "unknown name sevrity"},
		{`app + 1`, 1, 5, "invalid operation"},
		{`severity`, 0, 0, "expected bool"},
		{"app == \"web\" &&\n msg ~ 1", 2, 6, ""},
	}
	for _, tt := range tests {
		_, err := Compile(tt.expr)
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("Compile(%q) = %v, want *Error", tt.expr, err)
			continue
		}
		if fe.Line != tt.line || (tt.col != 0 && fe.Column != tt.col) {
			t.Errorf("Compile(%q) at %d:%d (%v), want %d:%d", tt.expr, fe.Line, fe.Column, fe, tt.line, tt.col)
		}
		if tt.messageHas != "" && !contains(fe.Message, tt.messageHas) {
			t.Errorf("Compile(%q) message %q, want it to contain %q", tt.expr, fe.Message, tt.messageHas)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestMatchAllocs holds the common cases to zero allocations per message,
// and documents what expr's VM allocates for.
func TestMatchAllocs(t *testing.T) {
	tests := []struct {
		expr   string
		allocs float64
	}{
		{`severity <= 4`, 0},
		{`app == "web"`, 0},
		{`msg contains "GET"`, 0},
		{`msg startsWith "GET"`, 0},
		{`procid == "web.1" && hostname != "x" || msgid == "a"`, 0},
		{`msg matches "^GET /api"`, 0},
		{`app in ["web", "api"]`, 0},
		{`facility == 1 && !(severity > 5)`, 0},
		{`time > date("2024-01-01T00:00:00Z")`, 0},
		// expr's VM allocates the argument buffer of a function call.
		{`sd("origin@123", "ip") == "1.2.3.4"`, 1},
	}
	msg := []byte(msgWeb)
	for _, tt := range tests {
		m, err := Compile(tt.expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.expr, err)
		}
		// Both paths: the fast one (fast.go) where it applies, and the VM.
		for _, m := range []*Matcher{m, onVM(t, tt.expr)} {
			m.Match(msg) // warm the VM's stack
			if n := testing.AllocsPerRun(200, func() { m.Match(msg) }); n != tt.allocs {
				t.Errorf("Match with %q (fast path %v): %v allocations per message, want %v", tt.expr, m.fast != nil, n, tt.allocs)
			}
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	for _, s := range []string{"2024-05-01T10:00:00Z", "2024-05-01T10:00:00.123456+02:00", "2003-10-11T22:14:15.003-07:00"} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ParseTimestamp([]byte(s))
		if !ok || !got.Equal(want) {
			t.Errorf("ParseTimestamp(%q) = %v, %v, want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "-", "2024-05-01 10:00:00Z", "2024-13-01T10:00:00Z", "2024-05-01T10:00:00", "2024-05-01T10:00:00.Z"} {
		if _, ok := ParseTimestamp([]byte(s)); ok {
			t.Errorf("ParseTimestamp(%q) ok, want not", s)
		}
	}
}

func TestLookupSD(t *testing.T) {
	sd := []byte(`[a x="1" y="2\]"][b@9 x="3"]`)
	tests := []struct {
		id, name, want string
		ok             bool
	}{
		{"a", "x", "1", true}, {"a", "y", `2\]`, true}, {"b@9", "x", "3", true},
		{"b@9", "y", "", false}, {"c", "x", "", false},
	}
	for _, tt := range tests {
		v, _, ok := LookupSD(sd, tt.id, tt.name)
		if string(v) != tt.want || ok != tt.ok {
			t.Errorf("LookupSD(%q, %q) = %q, %v, want %q, %v", tt.id, tt.name, v, ok, tt.want, tt.ok)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	msg := []byte(msgWeb)
	for _, bm := range []struct{ name, expr string }{
		{"severity", `severity <= 4`},
		{"app", `app == "web"`},
		{"contains", `msg contains "users"`},
		{"regex", `msg matches "^GET /api/[a-z]+"`},
		{"and", `app == "web" && severity <= 5 && msg contains "GET"`},
		{"sd", `sd("origin@123", "ip") == "1.2.3.4"`},
		{"time", `time > date("2024-01-01T00:00:00Z")`},
	} {
		b.Run(bm.name, func(b *testing.B) {
			m, err := Compile(bm.expr)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				m.Match(msg)
			}
		})
	}
}
