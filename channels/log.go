package channels

import (
	"context"
	"math"
	"time"
)

// Log holds every channel's bounded, append-only message log. Both backends
// (embedded, Redis) implement it and pass the contract suite in package
// logtest.
//
// Offsets start at 1 in a new epoch and increase by one per message. An
// epoch names one continuous history of a channel: when a backend loses a
// channel's history (a Redis shard restarted empty) the epoch changes, and
// readers holding a cursor of the old epoch are told (ReadResult.Reset)
// instead of seeing a silent gap.
type Log interface {
	// Append admits every batch or none. Each batch names its channel; its
	// messages get consecutive offsets in that channel, in order. When it
	// returns nil every message is in the log (or, for a buffering backend,
	// accepted into a bounded buffer that will be written: never discarded).
	// When the backend cannot admit now it waits until ctx is done and then
	// returns ErrLogFull: TCP input passes a context without deadline
	// (back-pressure), HTTP input a short deadline (503 Retry-After).
	// Append does not retain the batches.
	Append(ctx context.Context, batches []*Batch) error

	// AppendDurable is Append that returns only once the messages are
	// durable, so that an acknowledgement (a 204 to POST /logs) is a
	// promise: on the embedded backend they are on disk (under every sync
	// policy but none), on the Redis backend they are written to Redis
	// (or, while Redis is unreachable, kept in the node's own buffer).
	// Concurrent callers share the work (group commit): it is never one
	// fsync or one round trip per call.
	//
	// A batch with a Key (an idempotency key, see Batch.Key) whose key the
	// channel already stored within DedupWindow is not stored again; the
	// call still returns only once the batch stored first under that key
	// is durable. The check and the append are one atomic step: two
	// concurrent calls with the same key store the batch once.
	AppendDurable(ctx context.Context, batches []*Batch) error

	// Read copies into dst (after dst.Reset) up to limit records (and about
	// maxBytes of data; at least one record if any is available; 0 = no
	// bound) with offsets >= from.Offset. It does not block.
	Read(ctx context.Context, channelID string, from Cursor, limit, maxBytes int, dst *Records) (ReadResult, error)

	// Seek returns the cursor of the first retained message of channelID
	// ingested at or after t: the oldest retained message when t is before
	// it, the log's next offset when every message is older (or the log is
	// empty). Ingest times never decrease along a channel's offsets (the
	// log clamps them), so among messages with equal times the one with
	// the lowest offset is first. Only messages a Read would return count.
	Seek(ctx context.Context, channelID string, t time.Time) (Cursor, error)

	// Wait blocks until the channel has a message with offset >=
	// from.Offset in the epoch from.Epoch, its epoch is not from.Epoch (it
	// returns at once when the epoch differs already), or ctx is done
	// (ctx.Err()). Callers pass the Next of their last Read: a history
	// that restarted between that Read and the Wait (or between two Waits)
	// must wake them, even when the new history already reached the same
	// offset. An empty from.Epoch stands for the epoch at the call (none
	// when the log does not exist).
	Wait(ctx context.Context, channelID string, from Cursor) error

	// Info describes a channel's log; an unknown channel has an empty log
	// (First = Next = 1).
	Info(ctx context.Context, channelID string) (LogInfo, error)

	// SetRetention changes one channel's retention (the zero value restores
	// the default). The drain manager sets it: a channel's own retention
	// (Channel.Retention) combined with the extension for channels with
	// drains.
	SetRetention(channelID string, r Retention)

	// Delete drops a channel's log.
	Delete(ctx context.Context, channelID string) error

	// Close flushes what was accepted and releases resources.
	Close() error
}

// DedupWindow is how long a channel remembers the idempotency key of a
// stored batch (Batch.Key): a batch sent again with the same key within
// the window is stored once. Backends may remember longer.
const DedupWindow = time.Hour

// DefaultHistory is how many messages of a channel are kept and served as
// history by default: 1500, as Logplex serves.
const DefaultHistory = 1500

// DefaultRetention is the retention of a channel without its own: the
// newest DefaultHistory messages.
var DefaultRetention = Retention{Count: DefaultHistory}

// Retention bounds a channel log. A message is dropped when it is outside
// Count, Bytes or Age, except that the newest Keep messages stay unless
// Bytes is exceeded. Zero fields are unbounded. Backends may drop at a
// coarser grain (whole segments) but never keep less than the bounds allow
// for Keep and Count.
type Retention struct {
	Count int           // at most this many messages
	Bytes int64         // at most this many bytes of message data (hard bound)
	Age   time.Duration // nothing older than this ...
	Keep  int           // ... except the newest Keep messages
}

// LogInfo describes a channel log.
type LogInfo struct {
	Epoch string
	First uint64 // offset of the oldest retained message
	Next  uint64 // offset the next appended message will get
	Bytes int64  // retained message bytes
}

// ReadResult says what a Read returned beyond the records.
type ReadResult struct {
	Epoch string
	// Next is the cursor to pass to the next Read: one past the last
	// returned record, or where reading should resume if none.
	Next Cursor
	// Missed counts messages at or after from.Offset that left retention
	// before they could be read (the records start after them). MissedSince
	// is the ingest time of the first of them (best effort: at worst the
	// time of the oldest message the backend remembers evicting).
	Missed      uint64
	MissedSince time.Time
	// Reset is true when from.Epoch named an older epoch: the channel's
	// history restarted and reading began at the first retained message of
	// the new epoch. How much was lost is unknown.
	Reset bool
}

// Record is one stored message.
type Record struct {
	Offset uint64
	Time   int64  // ingest time, Unix nanoseconds
	Data   []byte // the cooked message, without framing; see Records.At
}

// Records is a reusable read buffer: record data is copied into one arena.
type Records struct {
	meta []recordMeta
	buf  []byte
}

type recordMeta struct {
	offset     uint64
	time       int64
	start, end int
}

// Reset empties r, keeping its memory.
func (r *Records) Reset() { r.meta, r.buf = r.meta[:0], r.buf[:0] }

// Add appends a copy of one record.
func (r *Records) Add(offset uint64, time int64, data []byte) {
	start := len(r.buf)
	r.buf = append(r.buf, data...)
	r.meta = append(r.meta, recordMeta{offset: offset, time: time, start: start, end: len(r.buf)})
}

// Len returns the number of records.
func (r *Records) Len() int { return len(r.meta) }

// Bytes returns the total size of the records' data.
func (r *Records) Bytes() int { return len(r.buf) }

// At returns record i. Its Data is valid until r is next changed.
func (r *Records) At(i int) Record {
	m := r.meta[i]
	return Record{Offset: m.offset, Time: m.time, Data: r.buf[m.start:m.end:m.end]}
}

// Batch is a reusable set of messages for one channel, built by ingest and
// handed to Log.Append. Not safe for concurrent use.
type Batch struct {
	ChannelID string
	Time      int64 // ingest time of every message, Unix nanoseconds
	// Key is the batch's idempotency key (empty: none): AppendDurable
	// stores a batch whose key the channel already stored once only.
	Key  string
	buf  []byte
	ends []int
}

// Add appends a copy of msg.
func (b *Batch) Add(msg []byte) {
	b.buf = append(b.buf, msg...)
	b.ends = append(b.ends, len(b.buf))
}

// AddCooked appends msg with msg[i:j] replaced by repl (the token replaced
// by its name), without an intermediate copy.
func (b *Batch) AddCooked(msg []byte, i, j int, repl string) {
	b.buf = append(b.buf, msg[:i]...)
	b.buf = append(b.buf, repl...)
	b.buf = append(b.buf, msg[j:]...)
	b.ends = append(b.ends, len(b.buf))
}

// Len returns the number of messages.
func (b *Batch) Len() int { return len(b.ends) }

// Bytes returns the total size of the messages.
func (b *Batch) Bytes() int { return len(b.buf) }

// Message returns message i; valid until b is next changed.
func (b *Batch) Message(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]:b.ends[i]]
}

// Raw returns the messages back to back and the end of each in data;
// both are valid until b is next changed.
func (b *Batch) Raw() (data []byte, ends []int) { return b.buf, b.ends }

// Reset empties b and clears its Key, keeping its memory and ChannelID.
func (b *Batch) Reset() { b.buf, b.ends, b.Key = b.buf[:0], b.ends[:0], "" }

// TimeNanos returns t as Unix nanoseconds, as record times are kept,
// clamped to the int64 range (UnixNano is undefined outside it).
func TimeNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)
