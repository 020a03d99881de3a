package syslog

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"

	gosyslog "github.com/influxdata/go-syslog/v3"
	"github.com/influxdata/go-syslog/v3/rfc3164"
)

// hdr3164 holds the positions of the parts of an RFC 3164 line found by
// scan3164. A missing part has start == end.
type hdr3164 struct {
	priEnd             int // msg[1:priEnd] are the PRI digits
	tsStart, tsEnd     int
	tsRFC3339          bool
	hostStart, hostEnd int
	tagStart, tagEnd   int
	pidStart, pidEnd   int
	msgStart           int
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// scan3164 splits "<PRI>[TIMESTAMP ][HOST ][TAG[PID]: ]MSG" with a byte scan.
// TIMESTAMP is "Mmm dd hh:mm:ss" (optionally with a year before the time and
// fractional seconds) or an RFC 3339 timestamp. A word ending in ':' (or
// "name[pid]:") right after the timestamp is the TAG (no HOST); without a
// timestamp, only a TAG is recognised. It reports false when msg has no
// "<PRI>" with a 1-3 digit PRI of at most 191.
func scan3164(msg []byte) (h hdr3164, ok bool) {
	if len(msg) < 3 || msg[0] != '<' {
		return h, false
	}
	p := 1
	pri := 0
	for p < len(msg) && p <= 4 && isDigit(msg[p]) {
		pri = pri*10 + int(msg[p]-'0')
		p++
	}
	if p == 1 || p > 4 || p >= len(msg) || msg[p] != '>' || pri > 191 {
		return h, false
	}
	h.priEnd = p
	p++
	h.tsStart, h.tsEnd = p, p
	if e, rfc, ok := timestamp3164(msg, p); ok {
		h.tsEnd, h.tsRFC3339 = e, rfc
		p = e
		for p < len(msg) && msg[p] == ' ' {
			p++
		}
	}
	hasTS := h.tsEnd > h.tsStart
	h.hostStart, h.hostEnd = p, p
	h.tagStart, h.tagEnd = p, p
	h.pidStart, h.pidEnd = p, p
	h.msgStart = p
	if h.tag(msg, p) {
		return h, true
	}
	if !hasTS {
		return h, true
	}
	// HOST, then maybe a TAG.
	e := bytes.IndexByte(msg[p:], ' ')
	if e <= 0 {
		// The rest is one word: a host without a message.
		e = len(msg) - p
		h.hostStart, h.hostEnd = p, p+e
		h.tagStart, h.tagEnd, h.pidStart, h.pidEnd, h.msgStart = p+e, p+e, p+e, p+e, p+e
		return h, true
	}
	h.hostStart, h.hostEnd = p, p+e
	p += e + 1
	h.tagStart, h.tagEnd, h.pidStart, h.pidEnd, h.msgStart = p, p, p, p, p
	h.tag(msg, p)
	return h, true
}

// tag recognises "TAG: " or "TAG[PID]: " (the space optional at the end of
// msg) at msg[p:] and records it.
func (h *hdr3164) tag(msg []byte, p int) bool {
	e := p
	for e < len(msg) && msg[e] != ' ' {
		e++
	}
	word := msg[p:e]
	if len(word) < 2 || word[len(word)-1] != ':' {
		return false
	}
	name := word[:len(word)-1]
	pidStart, pidEnd := 0, 0
	if name[len(name)-1] == ']' {
		i := bytes.IndexByte(name, '[')
		if i <= 0 {
			return false
		}
		pidStart, pidEnd = p+i+1, p+len(name)-1
		name = name[:i]
	} else if bytes.IndexByte(name, '[') >= 0 {
		return false
	}
	h.tagStart, h.tagEnd = p, p+len(name)
	if pidEnd > pidStart {
		h.pidStart, h.pidEnd = pidStart, pidEnd
	} else {
		h.pidStart, h.pidEnd = h.tagEnd, h.tagEnd
	}
	if e < len(msg) {
		e++
	}
	h.msgStart = e
	return true
}

// timestamp3164 recognises a timestamp at msg[p:] followed by a space or the
// end of msg, and returns its end.
func timestamp3164(msg []byte, p int) (end int, rfc3339 bool, ok bool) {
	b := msg[p:]
	if len(b) >= 19 && isDigit(b[0]) && isDigit(b[1]) && isDigit(b[2]) && isDigit(b[3]) && b[4] == '-' &&
		isDigit(b[5]) && isDigit(b[6]) && b[7] == '-' && isDigit(b[8]) && isDigit(b[9]) && b[10] == 'T' &&
		isClock(b[11:19]) {
		e := 19
		for e < len(b) && b[e] != ' ' {
			e++
		}
		return p + e, true, true
	}
	// Mmm dd [yyyy ]hh:mm:ss[.frac]
	if len(b) < 14 || !isMonth(b[:3]) || b[3] != ' ' {
		return 0, false, false
	}
	q := 4
	if b[q] == ' ' {
		q++
	}
	d := q
	for q < len(b) && q < d+2 && isDigit(b[q]) {
		q++
	}
	if q == d || q >= len(b) || b[q] != ' ' {
		return 0, false, false
	}
	q++
	if q+5 <= len(b) && isDigit(b[q]) && isDigit(b[q+1]) && isDigit(b[q+2]) && isDigit(b[q+3]) && b[q+4] == ' ' {
		q += 5 // year
	}
	if q+8 > len(b) || !isClock(b[q:q+8]) {
		return 0, false, false
	}
	q += 8
	if q < len(b) && b[q] == '.' {
		q++
		for q < len(b) && isDigit(b[q]) {
			q++
		}
	}
	if q < len(b) && b[q] != ' ' {
		return 0, false, false
	}
	return p + q, false, true
}

func isMonth(b []byte) bool {
	for _, m := range months {
		if string(b) == m {
			return true
		}
	}
	return false
}

// isClock reports whether b is "hh:mm:ss".
func isClock(b []byte) bool {
	return len(b) == 8 && isDigit(b[0]) && isDigit(b[1]) && b[2] == ':' && isDigit(b[3]) && isDigit(b[4]) &&
		b[5] == ':' && isDigit(b[6]) && isDigit(b[7])
}

// line3164 is an RFC 3164 line decoded for conversion.
type line3164 struct {
	pri       int
	ts        time.Time
	host, app []byte
	pid, msg  []byte
}

// decode3164 parses msg with go-syslog's RFC 3164 parser and falls back to
// scan3164 where go-syslog rejects (or misreads) what real daemons send.
func decode3164(msg []byte, now time.Time) (line3164, bool) {
	if l, ok := decodeGoSyslog(msg, now); ok {
		return l, true
	}
	h, ok := scan3164(msg)
	if !ok {
		return line3164{}, false
	}
	var l line3164
	l.pri, _ = strconv.Atoi(string(msg[1:h.priEnd]))
	l.ts = now
	if h.tsEnd > h.tsStart {
		if t, ok := parseTime3164(msg[h.tsStart:h.tsEnd], h.tsRFC3339, now); ok {
			l.ts = t
		}
	}
	l.host = msg[h.hostStart:h.hostEnd]
	l.app = msg[h.tagStart:h.tagEnd]
	l.pid = msg[h.pidStart:h.pidEnd]
	l.msg = msg[h.msgStart:]
	return l, true
}

// goParser is a go-syslog RFC 3164 machine for one year (the year is fixed
// when the machine is made), reused through goParsers.
type goParser struct {
	year int
	m    gosyslog.Machine
}

var goParsers sync.Pool

func getGoParser(year int) *goParser {
	if p, ok := goParsers.Get().(*goParser); ok && p.year == year {
		return p
	}
	return &goParser{year: year, m: rfc3164.NewMachine(
		rfc3164.WithYear(rfc3164.Year{YYYY: year}),
		rfc3164.WithRFC3339(),
		rfc3164.WithBestEffort(),
	)}
}

// decodeGoSyslog uses go-syslog (in best-effort mode) when its reading is
// trustworthy: PRI, timestamp, a HOST that is not really a TAG ("tag:" right
// after the timestamp), a TAG (go-syslog leaves tags over 32 bytes in the
// message), and a message that is the rest of the line after "TAG: ". A
// partial parse passes when only the message part failed and was empty.
func decodeGoSyslog(msg []byte, now time.Time) (line3164, bool) {
	p := getGoParser(now.Year())
	m, _ := p.m.Parse(msg)
	goParsers.Put(p)
	if m == nil {
		return line3164{}, false
	}
	sm, ok := m.(*rfc3164.SyslogMessage)
	if !ok {
		return line3164{}, false
	}
	b := &sm.Base
	if b.Priority == nil || b.Timestamp == nil || b.Hostname == nil || b.Appname == nil {
		return line3164{}, false
	}
	host := *b.Hostname
	if host == "" || host[len(host)-1] == ':' || strings.IndexByte(host, '[') >= 0 {
		return line3164{}, false
	}
	// The line must end in "HOST TAG[PID]: MSG" exactly as go-syslog split
	// it (it may, for one, set a TAG and still keep "tag:" in the message
	// when no space follows the colon).
	text, pid := "", ""
	if b.Message != nil {
		text = *b.Message
	}
	if b.ProcID != nil {
		pid = "[" + *b.ProcID + "]"
	}
	if !bytes.HasSuffix(msg, []byte(" "+host+" "+*b.Appname+pid+": "+text)) {
		return line3164{}, false
	}
	l := line3164{pri: int(*b.Priority), host: []byte(host), app: []byte(*b.Appname), msg: []byte(text)}
	if b.ProcID != nil {
		l.pid = []byte(*b.ProcID)
	}
	t := *b.Timestamp
	if i := bytes.IndexByte(msg, '>'); i > 0 && i+1 < len(msg) && isDigit(msg[i+1]) {
		l.ts = t // RFC 3339 with its own offset
	} else {
		l.ts = fixYear(time.Date(now.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), now.Location()), now)
	}
	return l, true
}

// fixYear moves a timestamp that lacks a year into the previous year when it
// would otherwise lie more than a month in the future (a December line read
// in January).
func fixYear(t, now time.Time) time.Time {
	if t.Sub(now) > 31*24*time.Hour {
		return t.AddDate(-1, 0, 0)
	}
	return t
}

// parseTime3164 parses a timestamp found by timestamp3164.
func parseTime3164(b []byte, rfc bool, now time.Time) (time.Time, bool) {
	s := string(b)
	if rfc {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
		if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, now.Location()); err == nil {
			return t, true
		}
		return time.Time{}, false
	}
	// Normalise "Mmm  d" to "Mmm d" and detect a year.
	month := 0
	for i, m := range months {
		if s[:3] == m {
			month = i + 1
		}
	}
	q := 4
	if s[q] == ' ' {
		q++
	}
	day := 0
	for q < len(s) && isDigit(s[q]) {
		day = day*10 + int(s[q]-'0')
		q++
	}
	q++
	year := now.Year()
	explicitYear := false
	if len(s)-q >= 13 && s[q+4] == ' ' {
		year, _ = strconv.Atoi(s[q : q+4])
		explicitYear = true
		q += 5
	}
	hh, _ := strconv.Atoi(s[q : q+2])
	mm, _ := strconv.Atoi(s[q+3 : q+5])
	ss, _ := strconv.Atoi(s[q+6 : q+8])
	ns := 0
	if frac := s[q+8:]; len(frac) > 1 {
		digits := frac[1:]
		if len(digits) > 9 {
			digits = digits[:9]
		}
		ns, _ = strconv.Atoi(digits)
		for k := len(digits); k < 9; k++ {
			ns *= 10
		}
	}
	if day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hh, mm, ss, ns, now.Location())
	if !explicitYear {
		t = fixYear(t, now)
	}
	return t, true
}

// Maximum field lengths of RFC 5424.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
)

// To5424 converts the RFC 3164 line msg to an RFC 5424 line
// "<PRI>1 TIMESTAMP HOST APP PROCID - - MSG", appends it to dst and returns
// it. TIMESTAMP is RFC 3339 with microseconds; a timestamp without a year
// gets now's year (the previous one when that would be over a month ahead)
// and is read in now's location; a missing timestamp becomes now. A missing
// HOST, TAG or PID becomes "-". Bytes outside printable US-ASCII in HOST, APP
// and PROCID are replaced by '_' and the fields are cut to RFC 5424's
// maximum lengths. A line that is already RFC 5424 ([Is5424]) is appended
// unchanged. To5424 reports false, leaving dst unchanged, when msg does not
// start with "<PRI>" (PRI 0-191).
func To5424(dst, msg []byte, now time.Time) ([]byte, bool) {
	if Is5424(msg) {
		return append(dst, msg...), true
	}
	l, ok := decode3164(msg, now)
	if !ok {
		return dst, false
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(l.pri), 10)
	dst = append(dst, ">1 "...)
	dst = l.ts.AppendFormat(dst, "2006-01-02T15:04:05.000000-07:00")
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, l.host, maxHostname)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, l.app, maxAppName)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, l.pid, maxProcID)
	dst = append(dst, " - - "...)
	return append(dst, l.msg...), true
}

// appendHeaderField appends an RFC 5424 header field: "-" when empty,
// otherwise at most max bytes with non-PRINTUSASCII bytes replaced by '_'.
func appendHeaderField(dst, b []byte, max int) []byte {
	if len(b) == 0 || len(b) == 1 && b[0] == '-' {
		return append(dst, '-')
	}
	if len(b) > max {
		b = b[:max]
	}
	for _, c := range b {
		if c < 33 || c > 126 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}
