package syslog

import "encoding/binary"

// Is5424 reports whether msg starts like an RFC 5424 line: "<PRI>1 " with a
// PRI of 1 to 3 digits.
func Is5424(msg []byte) bool {
	if len(msg) < 5 || msg[0] != '<' {
		return false
	}
	p := 1
	for p < len(msg) && p <= 4 && isDigit(msg[p]) {
		p++
	}
	if p == 1 || p > 4 {
		return false
	}
	return len(msg) >= p+3 && msg[p] == '>' && msg[p+1] == '1' && msg[p+2] == ' '
}

// Fields are the parts of an RFC 5424 line as [Parse] splits it. Every field
// is a sub-slice of the parsed message (MsgID may be the constant "-" when the
// line has none). Pri holds the digits only, without the angle brackets.
type Fields struct {
	Pri, Timestamp, Hostname, AppName, ProcID, MsgID, SD, Msg []byte
}

var nilValue = []byte("-")

// isSpace reports whether c is whitespace in the sense of PCRE's \s.
func isSpace(c byte) bool {
	return c == ' ' || c-'\t' <= '\r'-'\t' // \t \n \v \f \r are 9-13
}

// field returns the end of the \S+ run starting at p (p itself if empty).
func field(msg []byte, p int) int {
	// Eight bytes at a time while none of them is below '!' (whitespace is:
	// ' ' and 9-13); the byte loop then finds the exact end.
	for p+8 <= len(msg) && !hasByteBelowBang(binary.LittleEndian.Uint64(msg[p:])) {
		p += 8
	}
	for p < len(msg) && !isSpace(msg[p]) {
		p++
	}
	return p
}

// hasByteBelowBang reports whether one of the eight bytes of x is below
// 0x21 ('!'): the "has a byte less than n" test for n <= 128, which has no
// false answers (Hacker's Delight; Sean Anderson's bit hacks).
func hasByteBelowBang(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	return (x-ones*0x21)&^x&highs != 0
}

// Parse splits an RFC 5424 line into its fields, like Logplex's regex
//
//	^<(\d+)>(\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]]|\\])+\])+) (.*)
//
// but leniently (see the package documentation): only a missing
// "<PRI>VERSION TS HOST APP PROCID" prefix makes it fail. Parse does not
// allocate; the fields alias msg.
func Parse(msg []byte) (Fields, bool) {
	var f Fields
	if len(msg) < 3 || msg[0] != '<' {
		return f, false
	}
	p := 1
	for p < len(msg) && isDigit(msg[p]) {
		p++
	}
	if p == 1 || p >= len(msg) || msg[p] != '>' {
		return f, false
	}
	f.Pri = msg[1:p]
	p++
	// VERSION TS HOST APP PROCID: \S+ separated by single spaces.
	var parts [5][]byte
	for k := range parts {
		e := field(msg, p)
		if e == p {
			return Fields{}, false
		}
		parts[k] = msg[p:e]
		p = e
		if k < len(parts)-1 {
			if p >= len(msg) || msg[p] != ' ' {
				return Fields{}, false
			}
			p++
		}
	}
	f.Timestamp, f.Hostname, f.AppName, f.ProcID = parts[1], parts[2], parts[3], parts[4]
	f.MsgID = nilValue
	f.SD = msg[p:p]
	f.Msg = msg[p:p]
	if p == len(msg) {
		return f, true
	}
	if msg[p] != ' ' {
		// PROCID followed by other whitespace: not a field separator.
		return Fields{}, false
	}
	p++
	rest := p
	// MSGID SP SD (SP MSG | end)
	e := field(msg, p)
	if e > p && e < len(msg) && msg[e] == ' ' {
		msgID := msg[p:e]
		sdStart := e + 1
		if sdEnd, ok := sdEnd(msg, sdStart); ok {
			f.MsgID = msgID
			f.SD = msg[sdStart:sdEnd]
			if sdEnd < len(msg) {
				sdEnd++ // the space before MSG
			}
			f.Msg = msg[sdEnd:]
			return f, true
		}
	}
	// No valid structured data.
	if e == p+1 && msg[p] == '-' && (e == len(msg) || msg[e] == ' ') {
		f.MsgID = msg[p:e]
		if e < len(msg) {
			e++
		}
		f.Msg = msg[e:]
		return f, true
	}
	f.Msg = msg[rest:]
	return f, true
}

// sdEnd returns the end of the STRUCTURED-DATA field starting at msg[p]: "-"
// or one or more SD elements, followed by a space or the end of msg.
func sdEnd(msg []byte, p int) (int, bool) {
	if p >= len(msg) {
		return 0, false
	}
	if msg[p] == '-' {
		if p+1 == len(msg) || msg[p+1] == ' ' {
			return p + 1, true
		}
		return 0, false
	}
	if msg[p] != '[' {
		return 0, false
	}
	for p < len(msg) && msg[p] == '[' {
		e, ok := sdElementEnd(msg, p)
		if !ok {
			return 0, false
		}
		p = e
	}
	if p == len(msg) || msg[p] == ' ' {
		return p, true
	}
	return 0, false
}
