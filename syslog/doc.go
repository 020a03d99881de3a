// Package syslog is Plexus's syslog wire layer: framing, token extraction,
// parsing, output formats and the TCP/TLS/UDP listeners.
//
// # Framing
//
// [Reader] splits a TCP or TLS byte stream into frames. The framing is
// detected per frame, so one connection may mix RFC 6587 octet counting
// ("LEN SP MSG") and newline framing ("MSG\n"). A frame that starts with a
// digit 1-9 followed by at most 9 digits and a space is octet counted;
// anything else is a line (a trailing "\r" is stripped). Line feeds and
// carriage returns between frames are skipped. Oversized frames are
// discarded without buffering them and reported as a non-fatal
// [*FrameError]; the Reader's memory stays bounded by about
// maxFrame+64 KiB whatever the input.
//
// [SplitOctets] is the strict variant for HTTP "application/logplex-1"
// bodies: only back-to-back octet-counted frames are accepted, and a body
// with any bad frame is rejected as a whole ([ErrMalformed]) before the
// callback sees any message, so callers never store half a request.
//
// # Tokens
//
// [FindToken] locates the "t.<uuid>" token of a message without parsing it
// fully: the RFC 5424 APP-NAME, an RFC 5424 structured-data parameter
// token="t.…" in an element whose SD-ID is "plexus" or "plexus@<digits>"
// (the form rsyslog users add with a template), or the RFC 3164 TAG.
//
// # Parsing
//
// [Parse] splits an RFC 5424 line the way Logplex's session/drain regex
// does,
//
//	^<(\d+)>(\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]]|\\])+\])+) (.*)
//
// but it is lenient where Logplex silently hid lines:
//
//   - If the structured data is missing ("<134>1 TS host app web.1 - text"),
//     the field after PROCID is taken as MSGID when it is "-" and the rest is
//     the MSG; otherwise MSGID is reported as "-" and everything after PROCID
//     is the MSG. SD is then empty.
//   - If the line ends after the SD (or after PROCID), MSG is empty.
//   - Inside an SD element, a backslash escapes the next byte and a "]"
//     inside a quoted parameter value does not end the element.
//
// Parse only fails for lines without a "<PRI>VERSION TS HOST APP PROCID"
// prefix. The VERSION is not checked (Logplex does not check it either).
//
// [To5424] converts RFC 3164 (BSD) lines to RFC 5424 with the byte scan
// [FindToken] uses for their TAG, so both read a line the same way. It takes
// the forms real daemons send, which go-syslog's RFC 3164 parser rejects: no
// timestamp and no host ("<13>tag: msg", as logger writes to a local
// socket), a tag and no host, RFC 3339 timestamps with fractional seconds
// (rsyslog's RSYSLOG_ForwardFormat), tags longer than 32 bytes (tokens are
// 38), empty messages and control characters. It does not allocate.
//
// # Formats
//
// The Append* functions render the Logplex wire formats: session lines, v3
// /logs frames, HTTP drain frames (no structured data, by Logplex
// compatibility), syslog drain frames and the L10, L11 and L14 notices. They
// append to dst and allocate only when dst must grow.
//
// # Listeners
//
// [Server] accepts syslog over TCP, TLS and UDP and hands every frame to a
// [Sink] obtained from the [Handler], one Sink per connection (two for UDP,
// one per reader goroutine). Sink.Flush is called after the frames of each
// read were handed over; a Flush that blocks applies TCP back-pressure.
package syslog
