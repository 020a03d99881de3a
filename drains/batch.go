package drains

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/stats"
	"github.com/plexus-router/plexus/syslog"
	"github.com/plexus-router/plexus/syslog/filter"
)

// format is how a drain kind frames messages, and which.
type format struct {
	http   bool   // logplex-1 HTTP body; else octet-counted syslog stream
	token  string // the drain token
	target int    // batch size target in bytes
	raw    bool   // the rfc5424 format: messages as stored

	match     *filter.Matcher // the drain's filter (nil: none)
	matchNone bool            // the stored filter does not compile: nothing passes
	counts    *stats.Channel  // where filtered messages are counted (nil: nowhere)
}

// pass reports whether a message passes the drain's filter.
func (f *format) pass(fl syslog.Fields) bool {
	if f.matchNone {
		return false
	}
	return f.match == nil || f.match.MatchFields(fl)
}

func (f *format) frame(dst []byte, msg []byte, fl syslog.Fields) []byte {
	if f.raw {
		if f.http {
			return syslog.AppendRawHTTPDrainFrame(dst, msg)
		}
		return syslog.AppendRawSyslogDrainFrame(dst, msg)
	}
	if f.http {
		return syslog.AppendHTTPDrainFrame(dst, fl)
	}
	return syslog.AppendSyslogDrainFrame(dst, f.token, fl)
}

func (f *format) l10(dst []byte, n uint64, since, now time.Time) []byte {
	if f.http {
		return syslog.AppendL10HTTPFrame(dst, n, since, now)
	}
	return syslog.AppendL10SyslogFrame(dst, f.token, n, since, now)
}

// batch is one delivery: the encoded frames of a run of consecutive records
// (from one Log.Read), maybe preceded by an L10 frame. A batch is sent until
// it is acknowledged or rejected; its body never changes meanwhile.
type batch struct {
	body   []byte
	frames int // frames in body, the L10 frame included (Logplex-Msg-Count)
	data   int // message frames

	l10      uint64    // count reported by the L10 frame (0: none)
	l10Since time.Time //
	missed   uint64    // retention loss found by the read that built this batch
	reset    bool      // the read found a new log epoch

	unparseable int // records skipped
	filtered    int // records the drain's filter skipped
	records     int // records consumed (data + unparseable + filtered)

	from   channels.Cursor // where the read started
	first  uint64          // offset of the first consumed record (or next if none)
	next   channels.Cursor // position after the batch
	oldest int64           // ingest time of the first record, Unix ns (0: none)

	frameID [32]byte
}

// send reports whether the batch needs a request: it has messages, or it
// only reports a retention loss (everything the read skipped was evicted).
func (b *batch) send() bool { return b.data > 0 || b.missed > 0 }

// build encodes recs (the result of a Read from `from`) into b. pending and
// pendingSince are losses not yet reported: they and the read's own loss go
// into a leading L10 frame.
func (b *batch) build(f *format, from channels.Cursor, recs *channels.Records, res channels.ReadResult,
	pending uint64, pendingSince, now time.Time) {
	body := b.body[:0]
	*b = batch{from: from, missed: res.Missed, reset: res.Reset}

	b.l10 = pending + res.Missed
	if b.l10 > 0 {
		b.l10Since = pendingSince
		if res.Missed > 0 && !res.MissedSince.IsZero() && (b.l10Since.IsZero() || res.MissedSince.Before(b.l10Since)) {
			b.l10Since = res.MissedSince
		}
		if b.l10Since.IsZero() {
			b.l10Since = now
		}
		body = f.l10(body, b.l10, b.l10Since, now)
		b.frames = 1
	}

	b.next = res.Next
	b.first = res.Next.Offset
	n := recs.Len()
	for i := 0; i < n; i++ {
		r := recs.At(i)
		if i == 0 {
			b.first, b.oldest = r.Offset, r.Time
		}
		fl, ok := syslog.Parse(r.Data)
		if !ok {
			b.unparseable++
			b.records++
			continue
		}
		if !f.pass(fl) {
			f.countFiltered(fl)
			b.filtered++
			b.records++
			continue
		}
		mark := len(body)
		body = f.frame(body, r.Data, fl)
		if b.data > 0 && len(body) >= f.target {
			// This message would reach the target: it starts the next batch.
			body = body[:mark]
			b.next = channels.Cursor{Epoch: res.Epoch, Offset: r.Offset}
			break
		}
		b.data++
		b.frames++
		b.records++
	}
	if b.data == 0 && b.l10 > 0 && b.missed == 0 {
		// Only unparseable or filtered records and an old loss: nothing to send; the
		// loss waits for the next message.
		body = body[:0]
		b.frames, b.l10 = 0, 0
	}
	b.body = body
	b.setFrameID(f.token)
}

// setFrameID derives Logplex-Frame-Id from what identifies the batch's
// messages, so that every attempt at them carries the same id, on any node.
func (b *batch) setFrameID(token string) {
	var kb [128]byte
	key := append(kb[:0], token...)
	key = append(key, 0)
	key = append(key, b.next.Epoch...)
	key = append(key, 0)
	key = binary.BigEndian.AppendUint64(key, b.first)
	key = binary.BigEndian.AppendUint64(key, uint64(b.records))
	sum := sha256.Sum256(key)
	hex.Encode(b.frameID[:], sum[:16])
	for i, c := range b.frameID {
		if c >= 'a' && c <= 'f' {
			b.frameID[i] = c - 'a' + 'A'
		}
	}
}
