package syslog

import (
	"strconv"
	"time"
)

// L16Message appends the raw RFC 5424 message (no framing, no newline) that
// reports input dropped by a channel's rate limit, appended to the
// channel's log like L14 so that tails, history and drains show it:
// `<172>1 <now> plexus heroku logplex - - Error L16 (Rate limit) -> This channel dropped <n> messages since <since>.`
// L16 is Plexus's own code (Logplex had no rate limits); the text follows
// Logplex's L11 line.
func L16Message(dst []byte, n uint64, since, now time.Time) []byte {
	dst = append(dst, "<172>1 "...)
	dst = appendNoticeTime(dst, now)
	dst = append(dst, " plexus heroku logplex - - Error L16 (Rate limit) -> This channel dropped "...)
	dst = strconv.AppendUint(dst, n, 10)
	dst = append(dst, " messages since "...)
	dst = appendNoticeTime(dst, since)
	return append(dst, '.')
}
