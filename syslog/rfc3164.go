package syslog

import (
	"bytes"
	"strconv"
	"time"
)

// hdr3164 holds the positions of the parts of an RFC 3164 line found by
// scan3164. A missing part has start == end.
type hdr3164 struct {
	pri                int
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
	h.pri, h.priEnd = pri, p
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

// fixYear moves a timestamp that lacks a year into the previous year when it
// would otherwise lie more than a month in the future (a December line read
// in January).
func fixYear(t, now time.Time) time.Time {
	if t.Sub(now) > 31*24*time.Hour {
		return t.AddDate(-1, 0, 0)
	}
	return t
}

// parseTime3164 parses a timestamp found by timestamp3164. It returns the
// wall clock (in now's location, or UTC when the timestamp carries its own
// offset) and the offset from UTC in seconds. It does not allocate.
func parseTime3164(b []byte, rfc bool, now time.Time) (t time.Time, offset int, ok bool) {
	if rfc {
		return parseRFC3339(b, now)
	}
	// Mmm dd [yyyy ]hh:mm:ss[.frac]
	month := 0
	for i, m := range months {
		if string(b[:3]) == m {
			month = i + 1
		}
	}
	q := 4
	if b[q] == ' ' {
		q++
	}
	day := 0
	for q < len(b) && isDigit(b[q]) {
		day = day*10 + int(b[q]-'0')
		q++
	}
	q++
	year := now.Year()
	explicitYear := false
	if len(b)-q >= 13 && b[q+4] == ' ' {
		year = digits(b[q : q+4])
		explicitYear = true
		q += 5
	}
	hh, mm, ss := digits(b[q:q+2]), digits(b[q+3:q+5]), digits(b[q+6:q+8])
	ns := 0
	if frac := b[q+8:]; len(frac) > 1 {
		ns = nanoseconds(frac[1:])
	}
	if day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, 0, false
	}
	t = time.Date(year, time.Month(month), day, hh, mm, ss, ns, now.Location())
	if !explicitYear {
		t = fixYear(t, now)
	}
	_, offset = t.Zone()
	return t, offset, true
}

// parseRFC3339 parses "YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)", or the same
// without an offset (read in now's location), as time.Parse would with
// time.RFC3339Nano (or the layout without a zone), without allocating.
// timestamp3164 checked the digits and separators of the first 19 bytes.
func parseRFC3339(b []byte, now time.Time) (t time.Time, offset int, ok bool) {
	year, month, day := digits(b[0:4]), digits(b[5:7]), digits(b[8:10])
	hh, mm, ss := digits(b[11:13]), digits(b[14:16]), digits(b[17:19])
	rest := b[19:]
	ns := 0
	if len(rest) >= 2 && (rest[0] == '.' || rest[0] == ',') && isDigit(rest[1]) {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		ns = nanoseconds(rest[1:n])
		rest = rest[n:]
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) || hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, 0, false
	}
	switch {
	case len(rest) == 0:
		t = time.Date(year, time.Month(month), day, hh, mm, ss, ns, now.Location())
		_, offset = t.Zone()
		return t, offset, true
	case len(rest) == 1 && rest[0] == 'Z':
		return time.Date(year, time.Month(month), day, hh, mm, ss, ns, time.UTC), 0, true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && isDigit(rest[1]) && isDigit(rest[2]) &&
		rest[3] == ':' && isDigit(rest[4]) && isDigit(rest[5]):
		oh, om := digits(rest[1:3]), digits(rest[4:6])
		if oh > 23 || om > 59 {
			return time.Time{}, 0, false
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
		return time.Date(year, time.Month(month), day, hh, mm, ss, ns, time.UTC), offset, true
	}
	return time.Time{}, 0, false
}

// digits returns the value of the decimal digits b.
func digits(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

// nanoseconds returns the value of the fractional-second digits b (at most
// the first nine count).
func nanoseconds(b []byte) int {
	if len(b) > 9 {
		b = b[:9]
	}
	ns := digits(b)
	for k := len(b); k < 9; k++ {
		ns *= 10
	}
	return ns
}

// daysIn returns the number of days of month m in year.
func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// appendOffset appends a UTC offset in seconds as "+hh:mm" or "-hh:mm".
func appendOffset(dst []byte, offset int) []byte {
	sign := byte('+')
	if offset < 0 {
		sign, offset = '-', -offset
	}
	offset /= 60
	h, m := offset/60, offset%60
	return append(dst, sign, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+m/10), byte('0'+m%10))
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
// start with "<PRI>" (PRI 0-191). It does not allocate when dst has room.
func To5424(dst, msg []byte, now time.Time) ([]byte, bool) {
	if Is5424(msg) {
		return append(dst, msg...), true
	}
	h, ok := scan3164(msg)
	if !ok {
		return dst, false
	}
	ts := now
	_, offset := now.Zone()
	if h.tsEnd > h.tsStart {
		if t, off, ok := parseTime3164(msg[h.tsStart:h.tsEnd], h.tsRFC3339, now); ok {
			ts, offset = t, off
		}
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(h.pri), 10)
	dst = append(dst, ">1 "...)
	dst = ts.AppendFormat(dst, "2006-01-02T15:04:05.000000")
	dst = appendOffset(dst, offset)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, msg[h.hostStart:h.hostEnd], maxHostname)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, msg[h.tagStart:h.tagEnd], maxAppName)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, msg[h.pidStart:h.pidEnd], maxProcID)
	dst = append(dst, " - - "...)
	return append(dst, msg[h.msgStart:]...), true
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
