package syslog

// The "rfc5424" output format of sessions and drains: each message as it is
// stored — the RFC 5424 message as received (RFC 3164 input converted),
// HOSTNAME and structured data included, only the token replaced by its
// name — instead of Logplex's rewritten line.

// AppendRawLine appends msg followed by '\n' unless it already ends with
// one: a session line in the rfc5424 format.
func AppendRawLine(dst, msg []byte) []byte {
	dst = append(dst, msg...)
	if !endsWithNewline(msg) {
		dst = append(dst, '\n')
	}
	return dst
}

// AppendRawHTTPDrainFrame appends "LEN MSG" (no added newline, as HTTP
// drain frames in Logplex's format): an HTTP drain frame in the rfc5424
// format.
func AppendRawHTTPDrainFrame(dst, msg []byte) []byte {
	dst = appendLen(dst, len(msg))
	return append(dst, msg...)
}

// AppendRawSyslogDrainFrame appends "LEN MSG\n", the '\n' added only when
// MSG does not end with one and counted in LEN: a syslog (TCP/TLS) drain
// frame in the rfc5424 format. The HOSTNAME is the message's own, not the
// drain token.
func AppendRawSyslogDrainFrame(dst, msg []byte) []byte {
	n := len(msg)
	if !endsWithNewline(msg) {
		n++
	}
	dst = appendLen(dst, n)
	return AppendRawLine(dst, msg)
}

// AppendRawLogsFrame appends "LEN MSG\n" (the '\n' always added, as in
// AppendLogsFrame): a v3 logs frame in the rfc5424 format.
func AppendRawLogsFrame(dst, msg []byte) []byte {
	dst = appendLen(dst, len(msg)+1)
	dst = append(dst, msg...)
	return append(dst, '\n')
}
