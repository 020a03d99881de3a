package syslog

import (
	"testing"
)

const tok = "t.feff49f1-4d55-4c9e-aee1-2d2b10e69b42"

func TestFindToken(t *testing.T) {
	upper := "t.FEFF49F1-4D55-4C9E-AEE1-2D2B10E69B42"
	tests := []struct {
		name, msg string
		want      string // "" = not found
	}{
		{"5424 app-name", "<134>1 2012-12-10T03:00:48.123456Z erlang " + tok + " console.1 - - Logsplat test message 1", tok},
		{"5424 app-name upper", "<134>1 TS host " + upper + " web.1 - - x", upper},
		{"5424 app-name space runs", "<134>1  TS  host  " + tok + " web.1 - - x", tok},
		{"5424 app-name end", "<134>1 TS host " + tok, tok},
		{"5424 app-name longer", "<134>1 TS host " + tok + "x web.1 - - x", ""},
		{"5424 app-name shorter", "<134>1 TS host " + tok[:37] + " web.1 - - x", ""},
		{"5424 no token", "<134>1 TS host app web.1 - - " + tok, ""},
		{"5424 host is token", "<134>1 TS " + tok + " app web.1 - - x", ""},
		{"5424 sd plexus", `<134>1 TS host app web.1 - [plexus token="` + tok + `"] msg`, tok},
		{"5424 sd plexus@pen", `<134>1 TS host app web.1 - [plexus@32473 token="` + tok + `"] msg`, tok},
		{"5424 sd second element", `<134>1 TS host app web.1 - [meta a="]\"x"][plexus@1 x="y" token="` + tok + `"] msg`, tok},
		{"5424 sd second param", `<134>1 TS host app web.1 - [plexus@1 x="a b ] \" c" token="` + tok + `"]`, tok},
		{"5424 sd other id", `<134>1 TS host app web.1 - [other@1 token="` + tok + `"] msg`, ""},
		{"5424 sd plexus@", `<134>1 TS host app web.1 - [plexus@ token="` + tok + `"] msg`, ""},
		{"5424 sd plexusx", `<134>1 TS host app web.1 - [plexusx token="` + tok + `"] msg`, ""},
		{"5424 sd plexus@abc", `<134>1 TS host app web.1 - [plexus@abc token="` + tok + `"] msg`, ""},
		{"5424 sd other param", `<134>1 TS host app web.1 - [plexus@1 tok="` + tok + `"] msg`, ""},
		{"5424 sd bad value", `<134>1 TS host app web.1 - [plexus@1 token="` + tok + `x"] msg`, ""},
		{"5424 sd unterminated", `<134>1 TS host app web.1 - [plexus@1 token="` + tok + `"`, ""},
		{"5424 token only in msg", `<134>1 TS host app web.1 - - [plexus@1 token="` + tok + `"]`, ""},
		{"5424 app-name preferred", `<134>1 TS host ` + tok + ` web.1 - [plexus token="t.00000000-0000-0000-0000-000000000000"]`, tok},
		{"3164", "<13>Jan  2 15:04:05 myhost " + tok + "[123]: hello", tok},
		{"3164 no pid", "<13>Jan 12 15:04:05 myhost " + tok + ": hello", tok},
		{"3164 no host", "<13>Jan  2 15:04:05 " + tok + ": hello", tok},
		{"3164 logger local", "<13>" + tok + ": hello", tok},
		{"3164 logger local pid", "<13>" + tok + "[42]: hello", tok},
		{"3164 rfc3339", "<13>2024-01-02T03:04:05.123456+01:00 myhost " + tok + "[1]: hello", tok},
		{"3164 rfc3339 no host", "<13>2024-01-02T03:04:05Z " + tok + ": hello", tok},
		{"3164 tag not token", "<13>Jan  2 15:04:05 myhost sshd[1]: " + tok, ""},
		{"3164 tag without colon", "<13>Jan  2 15:04:05 myhost " + tok + " hello", ""},
		{"3164 empty msg", "<13>Jan  2 15:04:05 myhost " + tok + ":", tok},
		{"no pri", tok + ": hello", ""},
		{"empty", "", ""},
		{"pri only", "<13>", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, j, ok := FindToken([]byte(tt.msg))
			if tt.want == "" {
				if ok {
					t.Errorf("FindToken(%q) = %q, want none", tt.msg, tt.msg[i:j])
				}
				return
			}
			if !ok || tt.msg[i:j] != tt.want {
				t.Errorf("FindToken(%q) = %d, %d, %v, want %q", tt.msg, i, j, ok, tt.want)
			}
		})
	}
}

func TestFindTokenNoAllocs(t *testing.T) {
	msgs := [][]byte{
		[]byte("<134>1 2012-12-10T03:00:48.123456Z erlang " + tok + " console.1 - - Logsplat test message 1"),
		[]byte(`<134>1 TS host app web.1 - [plexus@32473 token="` + tok + `"] msg`),
		[]byte("<13>Jan  2 15:04:05 myhost " + tok + "[123]: hello"),
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, m := range msgs {
			if _, _, ok := FindToken(m); !ok {
				panic("not found")
			}
		}
	})
	if allocs != 0 {
		t.Errorf("FindToken allocates %v times", allocs)
	}
}

func BenchmarkFindToken(b *testing.B) {
	for _, bc := range []struct{ name, msg string }{
		{"5424", "<134>1 2012-12-10T03:00:48.123456Z erlang " + tok + " console.1 - - Logsplat test message 1"},
		{"sd", `<134>1 2024-01-02T03:04:05.123456+00:00 host app web.1 - [meta x="y"][plexus@32473 token="` + tok + `"] msg`},
		{"3164", "<13>Jan  2 15:04:05 myhost " + tok + "[123]: hello"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := []byte(bc.msg)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				FindToken(msg)
			}
		})
	}
}

func TestTokenShapedAppName(t *testing.T) {
	tests := []struct {
		msg  string
		want string // "" = not ok
	}{
		{"<134>1 2012-12-10T03:00:48Z host " + tok + " web.1 - - hi", tok},
		{"<134>1 2012-12-10T03:00:48Z  host   " + tok + " web.1 - - hi", tok}, // runs of spaces, as FindToken
		{"<134>1 2012-12-10T03:00:48Z host " + tok, tok},
		{"<134>1 2012-12-10T03:00:48Z host t.not-a-uuid-but-38-bytes-long-xxxxxxx web.1 - - hi", "t.not-a-uuid-but-38-bytes-long-xxxxxxx"}, // shape only: the caller looks it up
		{"<134>1 2012-12-10T03:00:48Z host app web.1 - [plexus token=\"" + tok + "\"] hi", ""},
		{"<13>Jan  2 15:04:05 myhost " + tok + "[123]: hello", ""}, // RFC 3164: FindToken's job
		{"<134>1 2012-12-10T03:00:48Z host", ""},
		{"", ""},
	}
	for _, tt := range tests {
		i, j, ok := TokenShapedAppName([]byte(tt.msg))
		got := ""
		if ok {
			got = tt.msg[i:j]
		}
		if got != tt.want {
			t.Errorf("TokenShapedAppName(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
