package syslog

import (
	"fmt"
	"testing"
)

func fieldsString(f Fields) string {
	return fmt.Sprintf("pri=%q ts=%q host=%q app=%q proc=%q msgid=%q sd=%q msg=%q",
		f.Pri, f.Timestamp, f.Hostname, f.AppName, f.ProcID, f.MsgID, f.SD, f.Msg)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, msg string
		want      string // fieldsString, "" = fails
	}{
		{"logplex", "<134>1 2012-12-10T03:00:48.123456Z erlang app web.1 - - hello",
			`pri="134" ts="2012-12-10T03:00:48.123456Z" host="erlang" app="app" proc="web.1" msgid="-" sd="-" msg="hello"`},
		{"msgid and sd", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event`,
			`pri="165" ts="2003-10-11T22:14:15.003Z" host="mymachine.example.com" app="evntslog" proc="-" msgid="ID47" sd="[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]" msg="An application event"`},
		{"sd escaped bracket", `<1>1 t h a p - [meta testName="bob\]"] m`,
			`pri="1" ts="t" host="h" app="a" proc="p" msgid="-" sd="[meta testName=\"bob\\]\"]" msg="m"`},
		{"sd bracket in quotes", `<1>1 t h a p - [meta x="a]b"] m`,
			`pri="1" ts="t" host="h" app="a" proc="p" msgid="-" sd="[meta x=\"a]b\"]" msg="m"`},
		{"sd multiple", `<1>1 t h a p - [a x="1"][b y="2"] m`,
			`pri="1" ts="t" host="h" app="a" proc="p" msgid="-" sd="[a x=\"1\"][b y=\"2\"]" msg="m"`},
		{"sd sequence id", `<1>1 t h a p - [meta sequenceId="518"] m`,
			`pri="1" ts="t" host="h" app="a" proc="p" msgid="-" sd="[meta sequenceId=\"518\"]" msg="m"`},
		{"msg keeps newlines", "<1>1 t h a p - - line1\nline2\n",
			`pri="1" ts="t" host="h" app="a" proc="p" msgid="-" sd="-" msg="line1\nline2\n"`},
		{"msg keeps spaces", "<1>1 t h a p - -  two  spaces ",
			`pri="1" ts="t" host="h" app="a" proc="p" msgid="-" sd="-" msg=" two  spaces "`},
		{"no sd (http drain frame)", "<134>1 2012-12-10T03:00:48.123456Z host app console.1 - Logsplat test message 1",
			`pri="134" ts="2012-12-10T03:00:48.123456Z" host="host" app="app" proc="console.1" msgid="-" sd="" msg="Logsplat test message 1"`},
		{"no msgid no sd", "<134>1 TS host app web.1 text and more",
			`pri="134" ts="TS" host="host" app="app" proc="web.1" msgid="-" sd="" msg="text and more"`},
		{"bad sd", "<134>1 TS host app web.1 - [x]y z",
			`pri="134" ts="TS" host="host" app="app" proc="web.1" msgid="-" sd="" msg="[x]y z"`},
		{"empty sd element", "<134>1 TS host app web.1 - [] z",
			`pri="134" ts="TS" host="host" app="app" proc="web.1" msgid="-" sd="" msg="[] z"`},
		{"ends after sd", "<134>1 TS host app web.1 - -",
			`pri="134" ts="TS" host="host" app="app" proc="web.1" msgid="-" sd="-" msg=""`},
		{"ends after sd space", "<134>1 TS host app web.1 - [a] ",
			`pri="134" ts="TS" host="host" app="app" proc="web.1" msgid="-" sd="[a]" msg=""`},
		{"ends after msgid", "<134>1 TS host app web.1 -",
			`pri="134" ts="TS" host="host" app="app" proc="web.1" msgid="-" sd="" msg=""`},
		{"ends after procid", "<134>1 TS host app web.1",
			`pri="134" ts="TS" host="host" app="app" proc="web.1" msgid="-" sd="" msg=""`},
		{"ends after procid space", "<134>1 TS host app web.1 ",
			`pri="134" ts="TS" host="host" app="app" proc="web.1" msgid="-" sd="" msg=""`},
		{"version not checked", "<1>2 t h a p - - m",
			`pri="1" ts="t" host="h" app="a" proc="p" msgid="-" sd="-" msg="m"`},
		{"long pri", "<1234>1 t h a p - - m",
			`pri="1234" ts="t" host="h" app="a" proc="p" msgid="-" sd="-" msg="m"`},
		{"no procid", "<134>1 TS host app", ""},
		{"double space", "<134>1 TS  host app web.1 - - x", ""},
		{"tab", "<134>1 TS\thost app web.1 - - x", ""},
		{"procid tab", "<134>1 TS host app web.1\tx", ""},
		{"empty pri", "<>1 t h a p - - m", ""},
		{"no pri", "134>1 t h a p - - m", ""},
		{"3164", "<13>Jan  2 15:04:05 host tag: msg", ""},
		{"logplex unparseable", "<42> blafasel", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := Parse([]byte(tt.msg))
			if tt.want == "" {
				if ok {
					t.Errorf("Parse(%q) = %s, want failure", tt.msg, fieldsString(f))
				}
				return
			}
			if !ok {
				t.Fatalf("Parse(%q) failed, want %s", tt.msg, tt.want)
			}
			if got := fieldsString(f); got != tt.want {
				t.Errorf("Parse(%q) =\n%s\nwant\n%s", tt.msg, got, tt.want)
			}
		})
	}
}

func TestIs5424(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{"<1>1 ", true},
		{"<134>1 TS", true},
		{"<1340>1 TS", false},
		{"<>1 TS", false},
		{"<13>Jan  2 15:04:05 host tag: msg", false},
		{"<13>1", false},
		{"<13>10 x", false},
		{"<13>2 x", false},
		{"134>1 x", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Is5424([]byte(tt.msg)); got != tt.want {
			t.Errorf("Is5424(%q) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}

func TestParseNoAllocs(t *testing.T) {
	msg := []byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An application event`)
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := Parse(msg); !ok {
			panic("parse")
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %v times", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	msg := []byte(`<134>1 2012-12-10T03:00:48.123456Z erlang app web.1 - [meta sequenceId="518"] Logsplat test message 1 with some more text in it`)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		Parse(msg)
	}
}

func BenchmarkAppendHTTPDrainFrame(b *testing.B) {
	f, _ := Parse([]byte(cookedMsg))
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendHTTPDrainFrame(buf[:0], f)
	}
}
