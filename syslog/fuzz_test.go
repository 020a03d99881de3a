package syslog

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzReader: the Reader never panics, never returns a frame over
// maxFrame, and gives the same frames however the stream is split.
func FuzzReader(f *testing.F) {
	f.Add([]byte("5 hello<13>tag: x\n3 abc<1>1 a\n"), uint16(20), uint64(1))
	f.Add([]byte("21 aaaaaaaaaaaaaaaaaaaaaline\r\n\r\n7 1234567"), uint16(20), uint64(2))
	f.Add([]byte("999999999 x"), uint16(5), uint64(3))
	f.Add([]byte("1234567890 x\n12"), uint16(5), uint64(4))
	f.Add([]byte("xxxxxxxxxxxxxxxxxxxxxxxxx\nabc\r"), uint16(3), uint64(5))
	f.Fuzz(func(t *testing.T, data []byte, max uint16, seed uint64) {
		maxFrame := int(max%2000) + 1
		want, err := readAll(t, NewReader(bytes.NewReader(data), maxFrame))
		if err != io.EOF {
			t.Fatalf("err = %v", err)
		}
		for _, it := range want {
			if len(it.frame) > maxFrame {
				t.Fatalf("frame of %d bytes > maxFrame %d", len(it.frame), maxFrame)
			}
		}
		// Random chunks.
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		var chunks [][]byte
		for rest := data; len(rest) > 0; {
			n := rng.IntN(min(len(rest), 16)) + 1
			chunks = append(chunks, rest[:n:n])
			rest = rest[n:]
		}
		got, err := readAll(t, NewReader(&splitReader{chunks: chunks}, maxFrame))
		if err != io.EOF || !sameItems(got, want) {
			t.Fatalf("chunks %q: got %v, %v; want %v", chunks, got, err, want)
		}
		// One byte at a time, with the last byte and io.EOF together.
		got, err = readAll(t, NewReader(iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(data))), maxFrame))
		if err != io.EOF || !sameItems(got, want) {
			t.Fatalf("one byte: got %v, %v; want %v", got, err, want)
		}
	})
}

// FuzzSplitOctets: arbitrary bodies never panic; messages framed with
// octet counting split back into the same messages; a truncated body is
// rejected as a whole.
func FuzzSplitOctets(f *testing.F) {
	f.Add([]byte("5 hello5 world"), []byte("a\x00b c\x00\n"), uint16(100))
	f.Add([]byte("0 "), []byte("x"), uint16(1))
	f.Add([]byte("5 hello\n"), []byte("\x00\x00"), uint16(5))
	f.Fuzz(func(t *testing.T, body, msgs []byte, max uint16) {
		maxFrame := int(max) + 1
		calls := 0
		n, err := SplitOctets(body, maxFrame, func(m []byte) {
			calls++
			if len(m) == 0 || len(m) > maxFrame {
				t.Fatalf("message of %d bytes", len(m))
			}
		})
		if err != nil && (err != ErrMalformed || n != 0 || calls != 0) {
			t.Fatalf("err = %v, n = %d, calls = %d", err, n, calls)
		}
		if err == nil && n != calls {
			t.Fatalf("n = %d, calls = %d", n, calls)
		}

		// Round trip.
		var want [][]byte
		var framed []byte
		for _, m := range bytes.Split(msgs, []byte{0}) {
			if len(m) == 0 || len(m) > maxFrame {
				continue
			}
			want = append(want, m)
			framed = appendOctetFrame(framed, m)
		}
		var got [][]byte
		n, err = SplitOctets(framed, maxFrame, func(m []byte) { got = append(got, m) })
		if err != nil || n != len(want) || len(got) != len(want) {
			t.Fatalf("SplitOctets(%q) = %d, %v", framed, n, err)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("message %d = %q, want %q", i, got[i], want[i])
			}
		}
		if len(framed) > 0 {
			if n, err := SplitOctets(framed[:len(framed)-1], maxFrame, nil); err != ErrMalformed || n != 0 {
				t.Fatalf("truncated body: %d, %v", n, err)
			}
		}
	})
}

func appendOctetFrame(dst, msg []byte) []byte {
	dst = append(dst, []byte(itoa(len(msg)))...)
	dst = append(dst, ' ')
	return append(dst, msg...)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

// FuzzFindToken: a found token is a token; replacing it by another token
// finds the new one at the same place (the router replaces exactly that).
func FuzzFindToken(f *testing.F) {
	for _, s := range []string{
		"<134>1 2012-12-10T03:00:48.123456Z erlang " + tok + " console.1 - - Logsplat test message 1",
		`<134>1 TS host app web.1 - [plexus@32473 token="` + tok + `"] msg`,
		`<134>1 TS host app web.1 - [a x="]"][plexus token="` + tok + `"]`,
		"<13>Jan  2 15:04:05 myhost " + tok + "[123]: hello",
		"<13>" + tok + ": hello",
		"<13>2024-01-02T03:04:05.123456+01:00 myhost " + tok + "[1]: hello",
	} {
		f.Add([]byte(s))
	}
	other := []byte("t.00000000-AAAA-bbbb-0000-123456789abc")
	f.Fuzz(func(t *testing.T, msg []byte) {
		// The router's shortcut: a token-shaped APP-NAME that is a valid
		// token is exactly what FindToken finds.
		if si, sj, ok := TokenShapedAppName(msg); ok && isToken(msg[si:sj]) {
			if i, j, ok := FindToken(msg); !ok || i != si || j != sj {
				t.Fatalf("TokenShapedAppName(%q) = %d, %d; FindToken = %d, %d, %v", msg, si, sj, i, j, ok)
			}
		}
		i, j, ok := FindToken(msg)
		if !ok {
			return
		}
		if i < 0 || j > len(msg) || i > j || !isToken(msg[i:j]) {
			t.Fatalf("FindToken(%q) = %d, %d", msg, i, j)
		}
		m2 := append(append(append([]byte(nil), msg[:i]...), other...), msg[j:]...)
		i2, j2, ok2 := FindToken(m2)
		if !ok2 || i2 != i || j2 != j {
			t.Fatalf("after replacement FindToken(%q) = %d, %d, %v; want %d, %d", m2, i2, j2, ok2, i, j)
		}
	})
}

// appendRFC5424 formats fields back into an RFC 5424 line.
func appendRFC5424(dst []byte, f Fields) []byte {
	dst = append(dst, '<')
	dst = append(dst, f.Pri...)
	dst = append(dst, ">1 "...)
	for _, b := range [][]byte{f.Timestamp, f.Hostname, f.AppName, f.ProcID, f.MsgID} {
		dst = append(dst, b...)
		dst = append(dst, ' ')
	}
	if len(f.SD) == 0 {
		dst = append(dst, '-')
	} else {
		dst = append(dst, f.SD...)
	}
	dst = append(dst, ' ')
	return append(dst, f.Msg...)
}

func normSD(f Fields) Fields {
	if len(f.SD) == 0 {
		f.SD = nilValue
	}
	return f
}

func sameFields(a, b Fields) bool {
	return bytes.Equal(a.Pri, b.Pri) && bytes.Equal(a.Timestamp, b.Timestamp) && bytes.Equal(a.Hostname, b.Hostname) &&
		bytes.Equal(a.AppName, b.AppName) && bytes.Equal(a.ProcID, b.ProcID) && bytes.Equal(a.MsgID, b.MsgID) &&
		bytes.Equal(a.SD, b.SD) && bytes.Equal(a.Msg, b.Msg)
}

// FuzzParse: Parse → format → Parse gives the same fields, and header
// fields are never empty or contain whitespace.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"<134>1 2012-12-10T03:00:48.123456Z erlang app web.1 - - hello",
		`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event`,
		`<1>1 t h a p - [meta testName="bob\]"] m`,
		"<134>1 TS host app web.1 - text",
		"<134>1 TS host app web.1",
		"<134>1 TS host app web.1 - [x]y z",
		"<1>1 t h a p - -  two  spaces \n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		fs, ok := Parse(msg)
		if !ok {
			return
		}
		for _, b := range [][]byte{fs.Pri, fs.Timestamp, fs.Hostname, fs.AppName, fs.ProcID, fs.MsgID} {
			if len(b) == 0 || bytes.ContainsAny(b, " \t\n\r\v\f") {
				t.Fatalf("Parse(%q): bad header field %q", msg, b)
			}
		}
		// Every octet-counted frame's LEN is the length of what follows it.
		for _, fr := range [][]byte{
			AppendLogsFrame(nil, fs), AppendHTTPDrainFrame(nil, fs), AppendSyslogDrainFrame(nil, "d.x", fs),
			AppendRawHTTPDrainFrame(nil, msg), AppendRawSyslogDrainFrame(nil, msg), AppendRawLogsFrame(nil, msg),
		} {
			sp := bytes.IndexByte(fr, ' ')
			if n, err := strconv.Atoi(string(fr[:sp])); err != nil || n != len(fr)-sp-1 {
				t.Fatalf("frame %q of %q: LEN %q, %d bytes follow", fr, msg, fr[:sp], len(fr)-sp-1)
			}
		}
		line := appendRFC5424(nil, fs)
		fs2, ok := Parse(line)
		if !ok {
			t.Fatalf("Parse(%q) failed (from %q)", line, msg)
		}
		if !sameFields(normSD(fs), fs2) {
			t.Fatalf("round trip of %q via %q:\n%s\n%s", msg, line, fieldsString(fs), fieldsString(fs2))
		}
	})
}

// FuzzTo5424: the output of To5424 is an RFC 5424 line that Parse splits,
// and a token FindToken sees in the input is still found in the output.
func FuzzTo5424(f *testing.F) {
	for _, s := range []string{
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		"<13>Mar  2 15:04:05 myhost " + tok + "[99]: hello world",
		"<13>" + tok + ": hello",
		"<30>2024-03-05T09:00:01.123456+01:00 web1 " + tok + "[7]: started",
		"<13>Mar  2 2021 15:04:05.123 myhost app: x",
		"<13>just a message",
		"<30>2024-02-29T23:59:59,5-01:30 web1 app: leap day",
		"<30>2023-02-29T23:59:59Z web1 app: no such day",
		"<30>2024-03-05T09:00:01.1234567891 web1 app: local time",
		"<30>2024-03-05T09:00:01+24:00 web1 app: offset out of range",
		"<30>2024-03-05T09:00:60Z web1 app: second out of range",
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2024, 3, 5, 10, 11, 12, 345678000, time.UTC)
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, ok := To5424([]byte("x"), msg, now)
		if !ok {
			if string(out) != "x" {
				t.Fatalf("To5424(%q) failed but wrote %q", msg, out)
			}
			return
		}
		out = out[1:]
		if !Is5424(out) {
			t.Fatalf("To5424(%q) = %q: not Is5424", msg, out)
		}
		if Is5424(msg) {
			return
		}
		fs, ok := Parse(out)
		if !ok {
			t.Fatalf("To5424(%q) = %q: Parse fails", msg, out)
		}
		if string(fs.MsgID) != "-" || string(fs.SD) != "-" {
			t.Fatalf("To5424(%q) = %q: MSGID %q SD %q", msg, out, fs.MsgID, fs.SD)
		}
		if h, ok := scan3164(msg); ok && h.tsRFC3339 {
			checkRFC3339(t, msg[h.tsStart:h.tsEnd], now)
		}
		if i, j, ok := FindToken(msg); ok {
			i2, j2, ok2 := FindToken(out)
			if !ok2 || !bytes.Equal(msg[i:j], out[i2:j2]) {
				t.Fatalf("token %q of %q lost in %q", msg[i:j], msg, out)
			}
		}
	})
}

// checkRFC3339 compares parseRFC3339 with time.Parse: both accept the same
// timestamps and read the same instant and offset, except that
// parseRFC3339 refuses offset hours of 24 and minutes of 60 (RFC 3339
// allows 23 and 59), which time.Parse takes.
func checkRFC3339(t *testing.T, ts []byte, now time.Time) {
	got, off, ok := parseRFC3339(ts, now)
	want, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		want, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", string(ts), now.Location())
	}
	if !ok {
		if err == nil {
			z := ts[len(ts)-6:]
			if string(z[1:3]) != "24" && string(z[4:6]) != "60" {
				t.Fatalf("parseRFC3339(%q) failed; time.Parse = %v", ts, want)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("parseRFC3339(%q) = %v %d; time.Parse: %v", ts, got, off, err)
	}
	instant := time.Date(got.Year(), got.Month(), got.Day(), got.Hour(), got.Minute(), got.Second(), got.Nanosecond(), time.UTC).Add(-time.Duration(off) * time.Second)
	if _, wantOff := want.Zone(); !instant.Equal(want) || off != wantOff {
		t.Fatalf("parseRFC3339(%q) = %v offset %d; time.Parse = %v", ts, got, off, want)
	}
}
