package syslog

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/influxdata/go-syslog/v3/rfc5424"
)

const (
	drainToken = "d.fc6b856b-3332-4546-93de-7d0ee272c3bd"
	cookedMsg  = "<134>1 2012-12-10T03:00:48.123456Z erlang app console.1 - - Logsplat test message 1"
	routerMsg  = `<158>1 2018-03-02T23:22:34.901697+00:00 hermes.537018@staging.herokudev.com heroku router - - at=info code=H81 desc="Blank app" method=GET path="/" host=direwolf-d99daa9eda.staging.herokuappdev.com request_id=56a11b1c-1f68-4658-80e4-8213a09a81c2 fwd="54.163.94.153" dyno= connect= service= status=502 bytes= protocol=https`
)

func mustParse(t testing.TB, s string) Fields {
	t.Helper()
	f, ok := Parse([]byte(s))
	if !ok {
		t.Fatalf("Parse(%q) failed", s)
	}
	return f
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// checkFrameLen checks that frame is "LEN SP MSG" with LEN == len(MSG).
func checkFrameLen(t *testing.T, frame []byte) []byte {
	t.Helper()
	sp := bytes.IndexByte(frame, ' ')
	n, err := strconv.Atoi(string(frame[:sp]))
	if err != nil || n != len(frame)-sp-1 {
		t.Fatalf("frame %q: LEN %q does not match %d bytes", frame, frame[:sp], len(frame)-sp-1)
	}
	return frame[sp+1:]
}

// check5424 checks with go-syslog's strict RFC 5424 parser.
func check5424(t *testing.T, msg []byte) {
	t.Helper()
	if _, err := rfc5424.NewParser().Parse(msg); err != nil {
		t.Errorf("not valid RFC 5424: %q: %v", msg, err)
	}
}

func TestFormatGolden(t *testing.T) {
	now := mustTime(t, "2014-11-11T08:24:25Z")
	since := mustTime(t, "2014-11-07T23:29:45Z")
	sinceCEST := since.In(time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"session", AppendSessionLine(nil, mustParse(t, "<134>1 2012-12-10T03:00:48.123456Z erlang app web.1 - - hello")),
			"2012-12-10T03:00:48.123456Z app[web.1]: hello\n"},
		{"session newline kept", AppendSessionLine(nil, mustParse(t, "<134>1 TS h app web.1 - - hello\n")),
			"TS app[web.1]: hello\n"},
		{"session empty msg", AppendSessionLine(nil, mustParse(t, "<134>1 TS h app web.1 - -")),
			"TS app[web.1]: \n"},
		{"session append", AppendSessionLine([]byte("x"), mustParse(t, "<1>1 a b c d - - e")), "xa c[d]: e\n"},
		{"logs 64", AppendLogsFrame(nil, mustParse(t, "<1>1 aaaa bbbb cccc dddd eeee - 1b6bfa2e-2f1e-4ab6-b1b7-05e2dc1cd7d6")),
			"64 <1>1 aaaa host cccc dddd - 1b6bfa2e-2f1e-4ab6-b1b7-05e2dc1cd7d6\n"},
		{"logs 290", AppendLogsFrame(nil, mustParse(t, routerMsg)),
			`290 <158>1 2018-03-02T23:22:34.901697+00:00 host heroku router - at=info code=H81 desc="Blank app" method=GET path="/" host=direwolf-d99daa9eda.staging.herokuappdev.com request_id=56a11b1c-1f68-4658-80e4-8213a09a81c2 fwd="54.163.94.153" dyno= connect= service= status=502 bytes= protocol=https` + "\n"},
		{"logs newline doubled", AppendLogsFrame(nil, mustParse(t, "<1>1 a b c d - - m\n")), "21 <1>1 a host c d - m\n\n"},
		{"http drain 79", AppendHTTPDrainFrame(nil, mustParse(t, cookedMsg)),
			"79 <134>1 2012-12-10T03:00:48.123456Z host app console.1 - Logsplat test message 1"},
		{"http drain newline kept", AppendHTTPDrainFrame(nil, mustParse(t, "<1>1 a b c d - - m\n")), "20 <1>1 a host c d - m\n"},
		{"http drain append", AppendHTTPDrainFrame([]byte("3 abc"), mustParse(t, "<1>1 a b c d - - m")), "3 abc19 <1>1 a host c d - m"},
		{"syslog drain 116", AppendSyslogDrainFrame(nil, drainToken, mustParse(t, cookedMsg)),
			"116 <134>1 2012-12-10T03:00:48.123456Z d.fc6b856b-3332-4546-93de-7d0ee272c3bd app console.1 - - Logsplat test message 1\n"},
		{"syslog drain newline not doubled", AppendSyslogDrainFrame(nil, "d.x", mustParse(t, "<1>1 a b c d - - m\n")), "21 <1>1 a d.x c d - - m\n"},
		{"L10 http 142", AppendL10HTTPFrame(nil, 1, since, now),
			"142 <172>1 2014-11-11T08:24:25+00:00 host heroku logplex - Error L10 (output buffer overflow): 1 messages dropped since 2014-11-07T23:29:45+00:00."},
		{"L10 http utc", AppendL10HTTPFrame(nil, 1, sinceCEST, now.In(sinceCEST.Location())),
			"142 <172>1 2014-11-11T08:24:25+00:00 host heroku logplex - Error L10 (output buffer overflow): 1 messages dropped since 2014-11-07T23:29:45+00:00."},
		{"L10 syslog", AppendL10SyslogFrame(nil, drainToken, 1024, since, now),
			"182 <172>1 2014-11-11T08:24:25+00:00 d.fc6b856b-3332-4546-93de-7d0ee272c3bd heroku logplex - - Error L10 (output buffer overflow): 1024 messages dropped since 2014-11-07T23:29:45+00:00.\n"},
		{"L11", AppendL11Line(nil, 7, since, now),
			"2014-11-11T08:24:25+00:00 logplex[1]: Error L11 (Tail buffer overflow) -> This tail session dropped 7 messages since 2014-11-07T23:29:45+00:00.\n"},
		{"L14", L14Message(nil, drainToken, "unknown_ca", "syslog+tls://example.com:6514", now),
			`<188>1 2014-11-11T08:24:25+00:00 d.fc6b856b-3332-4546-93de-7d0ee272c3bd heroku logplex - - Error L14 (certificate validation): error="unknown_ca" uri="syslog+tls://example.com:6514"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", tt.got, tt.want)
			}
		})
	}
}

func TestFormatFrameLengths(t *testing.T) {
	now := mustTime(t, "2024-01-02T03:04:05Z")
	for _, size := range []int{0, 1, 50, 80, 81, 82, 990, 9990, 99990, 999990} {
		msg := "<13>1 2024-01-02T03:04:05.000000Z h app p - - " + string(bytes.Repeat([]byte("x"), size))
		f := mustParse(t, msg)
		for _, frame := range [][]byte{
			AppendLogsFrame(nil, f), AppendHTTPDrainFrame(nil, f), AppendSyslogDrainFrame(nil, drainToken, f),
			AppendL10HTTPFrame(nil, uint64(size), now, now), AppendL10SyslogFrame(nil, drainToken, uint64(size), now, now),
		} {
			checkFrameLen(t, frame)
		}
	}
}

func TestFormatValid5424(t *testing.T) {
	now := mustTime(t, "2024-01-02T03:04:05Z")
	f := mustParse(t, cookedMsg)
	body := checkFrameLen(t, AppendSyslogDrainFrame(nil, drainToken, f))
	check5424(t, bytes.TrimSuffix(body, []byte("\n")))
	body = checkFrameLen(t, AppendL10SyslogFrame(nil, drainToken, 3, now, now))
	check5424(t, bytes.TrimSuffix(body, []byte("\n")))
	check5424(t, L14Message(nil, drainToken, "bad certificate", "syslog+tls://h:1", now))
	// HTTP drain frames have no SD (Logplex compatibility): strict parsers
	// must reject them, which documents the deviation.
	body = checkFrameLen(t, AppendHTTPDrainFrame(nil, f))
	if _, err := rfc5424.NewParser().Parse(body); err == nil {
		t.Errorf("HTTP drain frame %q unexpectedly valid RFC 5424", body)
	}
}

func TestFormatNoAllocs(t *testing.T) {
	f := mustParse(t, cookedMsg)
	now := time.Now()
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendHTTPDrainFrame(buf[:0], f)
		b = AppendSyslogDrainFrame(b, drainToken, f)
		b = AppendLogsFrame(b, f)
		b = AppendSessionLine(b, f)
		b = AppendL10HTTPFrame(b, 1, now, now)
		_ = AppendL11Line(b, 1, now, now)
	})
	if allocs != 0 {
		t.Errorf("formats allocate %v times", allocs)
	}
}
