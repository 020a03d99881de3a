package syslog

import (
	"strconv"
	"time"
)

// noticeTime is the layout of the times in Logplex's L10, L11 and L14
// notices, always in UTC ("+00:00").
const noticeTime = "2006-01-02T15:04:05"

func appendNoticeTime(dst []byte, t time.Time) []byte {
	dst = t.UTC().AppendFormat(dst, noticeTime)
	return append(dst, "+00:00"...)
}

// endsWithNewline reports whether b ends with '\n'.
func endsWithNewline(b []byte) bool { return len(b) > 0 && b[len(b)-1] == '\n' }

// frameLenReserve is the room reserved for "LEN " before a frame's message:
// the number is written right-aligned and the message moved, so the length
// is known without formatting twice.
const frameLenReserve = maxLenDigits + 1

// beginFrame reserves room for the length prefix and returns the new dst and
// the start of the reserved room.
func beginFrame(dst []byte) ([]byte, int) {
	start := len(dst)
	for i := 0; i < frameLenReserve; i++ {
		dst = append(dst, ' ')
	}
	return dst, start
}

// endFrame writes "LEN " for the message that follows the reserved room and
// closes the gap.
func endFrame(dst []byte, start int) []byte {
	msgStart := start + frameLenReserve
	n := len(dst) - msgStart
	var num [20]byte
	l := strconv.AppendInt(num[:0], int64(n), 10)
	hdr := len(l) + 1
	switch {
	case hdr < frameLenReserve:
		copy(dst[start+hdr:], dst[msgStart:])
		dst = dst[:len(dst)-(frameLenReserve-hdr)]
	case hdr > frameLenReserve: // a message of 1 GB or more
		extra := hdr - frameLenReserve
		dst = append(dst, make([]byte, extra)...)
		copy(dst[msgStart+extra:], dst[msgStart:len(dst)-extra])
	}
	copy(dst[start:], l)
	dst[start+len(l)] = ' '
	return dst
}

// AppendSessionLine appends the session (tail/history) line of a message,
// "TIMESTAMP APP[PROCID]: MSG\n"; the '\n' is added only when MSG does not
// already end with one.
func AppendSessionLine(dst []byte, f Fields) []byte {
	dst = append(dst, f.Timestamp...)
	dst = append(dst, ' ')
	dst = append(dst, f.AppName...)
	dst = append(dst, '[')
	dst = append(dst, f.ProcID...)
	dst = append(dst, "]: "...)
	dst = append(dst, f.Msg...)
	if !endsWithNewline(f.Msg) {
		dst = append(dst, '\n')
	}
	return dst
}

// AppendLogsFrame appends the v3 /logs frame of a message,
// "LEN <PRI>1 TIMESTAMP host APP PROCID - MSG\n", where LEN counts the bytes
// after its space including the always-added '\n'.
func AppendLogsFrame(dst []byte, f Fields) []byte {
	dst = appendLen(dst, drainBodyLen(f)+1)
	dst = appendDrainBody(dst, f)
	return append(dst, '\n')
}

// appendLen appends "LEN ". The per-message frames below know their length
// before writing them (no second pass, no move).
func appendLen(dst []byte, n int) []byte {
	dst = strconv.AppendUint(dst, uint64(n), 10)
	return append(dst, ' ')
}

// drainBodyLen is the length of what appendDrainBody appends.
func drainBodyLen(f Fields) int {
	return len("<>1 ") + len(f.Pri) + len(f.Timestamp) + len(" host ") + len(f.AppName) + 1 + len(f.ProcID) + len(" - ") + len(f.Msg)
}

// appendDrainBody appends "<PRI>1 TIMESTAMP host APP PROCID - MSG".
func appendDrainBody(dst []byte, f Fields) []byte {
	dst = append(dst, '<')
	dst = append(dst, f.Pri...)
	dst = append(dst, ">1 "...)
	dst = append(dst, f.Timestamp...)
	dst = append(dst, " host "...)
	dst = append(dst, f.AppName...)
	dst = append(dst, ' ')
	dst = append(dst, f.ProcID...)
	dst = append(dst, " - "...)
	return append(dst, f.Msg...)
}

// AppendHTTPDrainFrame appends the HTTP drain frame of a message,
// "LEN <PRI>1 TIMESTAMP host APP PROCID - MSG": no structured data and no
// added newline, as Logplex sends it.
func AppendHTTPDrainFrame(dst []byte, f Fields) []byte {
	dst = appendLen(dst, drainBodyLen(f))
	return appendDrainBody(dst, f)
}

// AppendSyslogDrainFrame appends the syslog (TCP/TLS) drain frame of a
// message, "LEN <PRI>1 TIMESTAMP <drain token> APP PROCID - - MSG\n"; the
// '\n' is added only when MSG does not already end with one and is counted
// in LEN.
func AppendSyslogDrainFrame(dst []byte, drainToken string, f Fields) []byte {
	nl := !endsWithNewline(f.Msg)
	n := len("<>1 ") + len(f.Pri) + len(f.Timestamp) + 1 + len(drainToken) + 1 + len(f.AppName) + 1 + len(f.ProcID) + len(" - - ") + len(f.Msg)
	if nl {
		n++
	}
	dst = appendLen(dst, n)
	dst = append(dst, '<')
	dst = append(dst, f.Pri...)
	dst = append(dst, ">1 "...)
	dst = append(dst, f.Timestamp...)
	dst = append(dst, ' ')
	dst = append(dst, drainToken...)
	dst = append(dst, ' ')
	dst = append(dst, f.AppName...)
	dst = append(dst, ' ')
	dst = append(dst, f.ProcID...)
	dst = append(dst, " - - "...)
	dst = append(dst, f.Msg...)
	if nl {
		dst = append(dst, '\n')
	}
	return dst
}

func appendL10Text(dst []byte, n uint64, since time.Time) []byte {
	dst = append(dst, "Error L10 (output buffer overflow): "...)
	dst = strconv.AppendUint(dst, n, 10)
	dst = append(dst, " messages dropped since "...)
	dst = appendNoticeTime(dst, since)
	return append(dst, '.')
}

// AppendL10HTTPFrame appends the L10 frame an HTTP drain prepends to a batch
// after losing n messages since since:
// "LEN <172>1 <now> host heroku logplex - Error L10 (output buffer overflow): <n> messages dropped since <since>."
// (no newline, as Logplex sends it).
func AppendL10HTTPFrame(dst []byte, n uint64, since, now time.Time) []byte {
	dst, start := beginFrame(dst)
	dst = append(dst, "<172>1 "...)
	dst = appendNoticeTime(dst, now)
	dst = append(dst, " host heroku logplex - "...)
	dst = appendL10Text(dst, n, since)
	return endFrame(dst, start)
}

// AppendL10SyslogFrame appends the L10 frame a syslog drain writes in
// stream position after losing n messages since since:
// "LEN <172>1 <now> <drain token> heroku logplex - - Error L10 (output buffer overflow): <n> messages dropped since <since>.\n".
func AppendL10SyslogFrame(dst []byte, drainToken string, n uint64, since, now time.Time) []byte {
	dst, start := beginFrame(dst)
	dst = append(dst, "<172>1 "...)
	dst = appendNoticeTime(dst, now)
	dst = append(dst, ' ')
	dst = append(dst, drainToken...)
	dst = append(dst, " heroku logplex - - "...)
	dst = appendL10Text(dst, n, since)
	dst = append(dst, '\n')
	return endFrame(dst, start)
}

// AppendL11Line appends the session line a tail writes after dropping n
// messages since since:
// "<now> logplex[1]: Error L11 (Tail buffer overflow) -> This tail session dropped <n> messages since <since>.\n".
func AppendL11Line(dst []byte, n uint64, since, now time.Time) []byte {
	dst = appendNoticeTime(dst, now)
	dst = append(dst, " logplex[1]: Error L11 (Tail buffer overflow) -> This tail session dropped "...)
	dst = strconv.AppendUint(dst, n, 10)
	dst = append(dst, " messages since "...)
	dst = appendNoticeTime(dst, since)
	return append(dst, ".\n"...)
}

// L14Message appends the raw RFC 5424 message (no framing, no newline) that
// reports a TLS certificate failure of a syslog+tls drain, to be appended to
// the channel's log:
// `<188>1 <now> <drain token> heroku logplex - - Error L14 (certificate validation): error="<errText>" uri="<url>"`.
func L14Message(dst []byte, drainToken, errText, url string, now time.Time) []byte {
	dst = append(dst, "<188>1 "...)
	dst = appendNoticeTime(dst, now)
	dst = append(dst, ' ')
	dst = append(dst, drainToken...)
	dst = append(dst, ` heroku logplex - - Error L14 (certificate validation): error="`...)
	dst = append(dst, errText...)
	dst = append(dst, `" uri="`...)
	dst = append(dst, url...)
	return append(dst, '"')
}
