package syslog

import "bytes"

// tokenLen is the length of "t." followed by a 36-character UUID.
const tokenLen = 38

// isToken reports whether b is exactly "t.<uuid>" (hex digits in either case).
func isToken(b []byte) bool {
	return len(b) == tokenLen && b[0] == 't' && b[1] == '.' && isUUID(b[2:])
}

func isUUID(b []byte) bool {
	if len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return false
	}
	// One table load per byte; the dashes are not hex, so skip them.
	ok := true
	for i, c := range b {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		ok = ok && hexDigit[c]
	}
	return ok
}

// hexDigit[c] reports whether c is a hexadecimal digit.
var hexDigit = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdefABCDEF") {
		t[c] = true
	}
	return t
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// FindToken locates the channel token "t.<uuid>" in msg and returns its
// position: msg[i:j] is the token. It looks, in this order, at
//
//   - RFC 5424 lines ("<PRI>1 TS HOST APP …", see [Is5424]): the APP-NAME
//     field, then every structured-data element whose SD-ID is "plexus" or
//     "plexus@<digits>" for a parameter token="t.<uuid>";
//   - other lines, read as RFC 3164: the TAG of
//     "<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG", also with an RFC 3339
//     timestamp, without a timestamp and/or without a HOST.
//
// FindToken scans bytes only and does not allocate.
func FindToken(msg []byte) (i, j int, ok bool) {
	if Is5424(msg) {
		return findToken5424(msg)
	}
	h, ok := scan3164(msg)
	if !ok || h.tagEnd <= h.tagStart {
		return 0, 0, false
	}
	if isToken(msg[h.tagStart:h.tagEnd]) {
		return h.tagStart, h.tagEnd, true
	}
	return 0, 0, false
}

// findToken5424 looks at the APP-NAME and the structured data of an RFC 5424
// line. Fields may be separated by runs of spaces, as Logplex splits them.
func findToken5424(msg []byte) (i, j int, ok bool) {
	p := bytes.IndexByte(msg, ' ') + 1 // after "<PRI>1 "
	var start, end int
	// TS, HOST, APP-NAME, PROCID, MSGID
	for f := 0; f < 5; f++ {
		start, end = nextField(msg, p)
		if start == end {
			return 0, 0, false
		}
		p = end
		if f == 2 && isToken(msg[start:end]) {
			return start, end, true
		}
	}
	// Structured data follows MSGID after one space.
	if p >= len(msg) || msg[p] != ' ' {
		return 0, 0, false
	}
	p++
	for p < len(msg) && msg[p] == '[' {
		e, ok := sdElementEnd(msg, p)
		if !ok {
			return 0, 0, false
		}
		if i, j, ok := sdToken(msg[:e], p); ok {
			return i, j, true
		}
		p = e
	}
	return 0, 0, false
}

// nextField returns the bounds of the field at p, after a run of spaces.
func nextField(msg []byte, p int) (start, end int) {
	for p < len(msg) && msg[p] == ' ' {
		p++
	}
	if k := bytes.IndexByte(msg[p:], ' '); k >= 0 {
		return p, p + k
	}
	return p, len(msg)
}

// TokenShapedAppName returns the APP-NAME of an RFC 5424 line when it has a
// token's shape ("t." and 38 bytes long), without checking the UUID: for a
// caller that looks it up among known tokens first, and calls [FindToken]
// only when that fails (the known tokens are valid, so a hit is what
// FindToken would have found).
func TokenShapedAppName(msg []byte) (i, j int, ok bool) {
	if !Is5424(msg) {
		return 0, 0, false
	}
	p := bytes.IndexByte(msg, ' ') + 1
	for f := 0; f < 3; f++ {
		i, j = nextField(msg, p)
		p = j
	}
	return i, j, j-i == tokenLen && msg[i] == 't' && msg[i+1] == '.'
}

// sdToken looks for token="t.<uuid>" in the SD element msg[p:] (which starts
// with '[' and ends with ']') if its SD-ID is plexus or plexus@<digits>.
func sdToken(msg []byte, p int) (i, j int, ok bool) {
	p++ // '['
	idStart := p
	for p < len(msg) && msg[p] != ' ' && msg[p] != ']' {
		p++
	}
	if !isPlexusSDID(msg[idStart:p]) {
		return 0, 0, false
	}
	// params: SP name="value"
	for p < len(msg) && msg[p] == ' ' {
		for p < len(msg) && msg[p] == ' ' {
			p++
		}
		nameStart := p
		for p < len(msg) && msg[p] != '=' && msg[p] != ' ' && msg[p] != ']' && msg[p] != '"' {
			p++
		}
		name := msg[nameStart:p]
		if p+1 >= len(msg) || msg[p] != '=' || msg[p+1] != '"' {
			return 0, 0, false
		}
		p += 2
		valStart := p
		for p < len(msg) && msg[p] != '"' {
			if msg[p] == '\\' {
				p++
			}
			p++
		}
		if p >= len(msg) {
			return 0, 0, false
		}
		if string(name) == "token" && isToken(msg[valStart:p]) {
			return valStart, p, true
		}
		p++ // closing quote
	}
	return 0, 0, false
}

func isPlexusSDID(id []byte) bool {
	const name = "plexus"
	if len(id) < len(name) || string(id[:len(name)]) != name {
		return false
	}
	rest := id[len(name):]
	if len(rest) == 0 {
		return true
	}
	if rest[0] != '@' || len(rest) == 1 {
		return false
	}
	for _, c := range rest[1:] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// sdElementEnd returns the index just after the SD element that starts at
// msg[p] == '['. A backslash escapes the next byte; a ']' inside a quoted
// parameter value does not end the element. The element must not be empty.
func sdElementEnd(msg []byte, p int) (int, bool) {
	inQuote := false
	for q := p + 1; q < len(msg); q++ {
		switch msg[q] {
		case '\\':
			q++
		case '"':
			inQuote = !inQuote
		case ']':
			if !inQuote {
				if q == p+1 {
					return 0, false
				}
				return q + 1, true
			}
		}
	}
	return 0, false
}
