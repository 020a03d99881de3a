package channels

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimit bounds a channel's input: messages and bytes per second, with
// a burst. Zero fields are unlimited; the zero RateLimit limits nothing.
//
// Burst is the size of the message bucket (how many messages may arrive
// at once after a quiet period; default one second of MessagesPerS). The
// byte bucket holds the same span of time of BytesPerS (one second when
// MessagesPerS is not set).
type RateLimit struct {
	MessagesPerS float64 `json:"messages_per_s,omitempty"`
	BytesPerS    float64 `json:"bytes_per_s,omitempty"`
	Burst        float64 `json:"burst,omitempty"`
}

// IsZero reports whether l limits nothing.
func (l RateLimit) IsZero() bool { return l.MessagesPerS <= 0 && l.BytesPerS <= 0 }

// Validate checks that every field is a finite number, not negative.
func (l RateLimit) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"messages_per_s", l.MessagesPerS}, {"bytes_per_s", l.BytesPerS}, {"burst", l.Burst}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return Errorf(CodeInvalid, "rate_limit.%s must be a number >= 0", f.name)
		}
	}
	return nil
}

// String describes l for logs and errors.
func (l RateLimit) String() string {
	return fmt.Sprintf("%g msg/s, %g B/s, burst %g", l.MessagesPerS, l.BytesPerS, l.Burst)
}

// buckets returns the refill rates and sizes of the message and byte
// buckets (a zero rate: that dimension is unlimited).
func (l RateLimit) buckets() (msgRate, msgCap, byteRate, byteCap float64) {
	span := 1.0 // seconds of rate a bucket holds
	if l.MessagesPerS > 0 {
		msgRate, msgCap = l.MessagesPerS, l.Burst
		if msgCap <= 0 {
			msgCap = math.Max(l.MessagesPerS, 1)
		}
		span = msgCap / l.MessagesPerS
	}
	if l.BytesPerS > 0 {
		byteRate, byteCap = l.BytesPerS, math.Max(l.BytesPerS*span, 1)
	}
	return
}

// Limiter is one channel's token buckets and its count of messages
// dropped for being over the limit. The registry keeps one per channel id
// and puts it in every Route of the channel, so the hot path reaches it
// from the token lookup. Safe for concurrent use; the lock is the
// channel's own, so channels never wait for each other.
//
// A request may take more than a bucket holds: it is admitted when the
// bucket is full and leaves it in debt, so that the rate holds on average
// and a batch larger than the burst is not refused forever.
type Limiter struct {
	channelID string
	own       atomic.Pointer[RateLimit] // the channel's own limit (nil: the default)
	deleted   atomic.Bool
	total     atomic.Uint64 // messages dropped since start

	mu                 sync.Mutex
	started            bool
	last               int64 // Unix nanoseconds of the last refill
	msgTokens, byteTok float64
	dropped            uint64 // since the last notice
	since              int64  // time of the first of them
	queued             bool   // dropped > 0 and the notifier was told
}

// NewLimiter returns the limiter of a channel, without a limit of its own.
func NewLimiter(channelID string) *Limiter { return &Limiter{channelID: channelID} }

// ChannelID returns the id of the limiter's channel.
func (l *Limiter) ChannelID() string { return l.channelID }

// Set sets the channel's own limit (nil or zero: the default applies). A
// changed limit starts with full buckets.
func (l *Limiter) Set(own *RateLimit) {
	if own != nil && *own == (RateLimit{}) {
		own = nil
	}
	if own != nil {
		c := *own
		own = &c
	}
	if old := l.own.Load(); (old == nil) == (own == nil) && (old == nil || *old == *own) {
		return
	}
	l.own.Store(own)
	l.mu.Lock()
	l.started = false // a new limit starts with full buckets
	l.mu.Unlock()
}

// Own returns the channel's own limit (nil: none).
func (l *Limiter) Own() *RateLimit { return l.own.Load() }

// SetDeleted marks the channel deleted (no notice is written for it) or
// not.
func (l *Limiter) SetDeleted(d bool) { l.deleted.Store(d) }

// Deleted reports whether the channel was deleted.
func (l *Limiter) Deleted() bool { return l.deleted.Load() }

// Total returns how many messages were dropped since start.
func (l *Limiter) Total() uint64 { return l.total.Load() }

// effective returns the limit in force: the channel's own, else def.
func (l *Limiter) effective(def *RateLimit) *RateLimit {
	if own := l.own.Load(); own != nil {
		return own
	}
	return def
}

// refill brings the buckets to now. Caller holds l.mu.
func (l *Limiter) refill(now int64, msgRate, msgCap, byteRate, byteCap float64) {
	if !l.started {
		l.started, l.last, l.msgTokens, l.byteTok = true, now, msgCap, byteCap
		return
	}
	if dt := float64(now-l.last) / 1e9; dt > 0 {
		l.msgTokens = math.Min(msgCap, l.msgTokens+dt*msgRate)
		l.byteTok = math.Min(byteCap, l.byteTok+dt*byteRate)
		l.last = now
	}
}

// Allow admits one message of size bytes at time now (Unix nanoseconds)
// under the channel's limit, or def when it has none (nil: unlimited).
// A refused message is counted as dropped; first reports that it is the
// first drop since the last TakeDrops (the caller tells the notifier).
func (l *Limiter) Allow(now int64, size int, def *RateLimit) (ok, first bool) {
	_, _, ok, first = l.Lease(now, 1, size, size, def)
	return ok, first
}

// Lease is Allow for a caller that admits many messages in a row (a
// syslog connection's read): it takes up to n messages and size bytes at
// once, spends them message by message and gives back what is left with
// Refund, so that connections of a busy channel take its lock once per
// lease rather than once per message. It takes at least one message of
// minSize bytes (the message at hand), and at most a quarter of what the
// buckets hold beyond that, so that leases shrink near the limit and
// other connections are not refused while tokens sit in a lease.
// Without a limit it grants everything asked. When not even the message
// at hand fits, nothing is taken and the message counts as dropped, as
// with Allow.
func (l *Limiter) Lease(now int64, n, size, minSize int, def *RateLimit) (gotN, gotSize int, ok, first bool) {
	lim := l.effective(def)
	if lim == nil || lim.IsZero() {
		return n, max(size, minSize), true, false
	}
	msgRate, msgCap, byteRate, byteCap := lim.buckets()
	l.mu.Lock()
	l.refill(now, msgRate, msgCap, byteRate, byteCap)
	gotN, gotSize = n, max(size, minSize)
	if msgRate > 0 {
		if l.msgTokens < math.Min(1, msgCap) {
			return 0, 0, false, l.dropLocked(now)
		}
		gotN = min(n, 1+max(0, int((l.msgTokens-1)/4)))
		l.msgTokens -= float64(gotN)
	}
	if byteRate > 0 {
		if l.byteTok < math.Min(float64(minSize), byteCap) {
			if msgRate > 0 {
				l.msgTokens += float64(gotN) // give back: nothing is taken
			}
			return 0, 0, false, l.dropLocked(now)
		}
		gotSize = max(minSize, min(size, int((l.byteTok-float64(minSize))/4)+minSize))
		l.byteTok -= float64(gotSize)
	}
	l.mu.Unlock()
	return gotN, gotSize, true, false
}

// dropLocked counts a dropped message and unlocks l.mu; first reports
// that it is the first since the last TakeDrops.
func (l *Limiter) dropLocked(now int64) (first bool) {
	l.dropped++
	first = !l.queued
	if first {
		l.queued, l.since = true, now
	}
	l.mu.Unlock()
	l.total.Add(1)
	return first
}

// Take admits n messages of size bytes in all, all or none (HTTP input).
// When it refuses, retryAfter is when the same request would be admitted.
// Nothing is counted as dropped: the client is told.
func (l *Limiter) Take(now int64, n, size int, def *RateLimit) (ok bool, retryAfter time.Duration) {
	lim := l.effective(def)
	if lim == nil || lim.IsZero() {
		return true, 0
	}
	return l.take(now, n, size, lim)
}

func (l *Limiter) take(now int64, n, size int, lim *RateLimit) (bool, time.Duration) {
	msgRate, msgCap, byteRate, byteCap := lim.buckets()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now, msgRate, msgCap, byteRate, byteCap)
	var wait float64 // seconds
	if msgRate > 0 {
		if need := math.Min(float64(n), msgCap); l.msgTokens < need {
			wait = math.Max(wait, (need-l.msgTokens)/msgRate)
		}
	}
	if byteRate > 0 {
		if need := math.Min(float64(size), byteCap); l.byteTok < need {
			wait = math.Max(wait, (need-l.byteTok)/byteRate)
		}
	}
	if wait > 0 {
		return false, time.Duration(wait * float64(time.Second))
	}
	if msgRate > 0 {
		l.msgTokens -= float64(n)
	}
	if byteRate > 0 {
		l.byteTok -= float64(size)
	}
	return true, 0
}

// Refund gives back what a Take took (the request failed afterwards).
func (l *Limiter) Refund(n, size int, def *RateLimit) {
	lim := l.effective(def)
	if lim == nil || lim.IsZero() {
		return
	}
	msgRate, msgCap, byteRate, byteCap := lim.buckets()
	l.mu.Lock()
	if msgRate > 0 {
		l.msgTokens = math.Min(msgCap, l.msgTokens+float64(n))
	}
	if byteRate > 0 {
		l.byteTok = math.Min(byteCap, l.byteTok+float64(size))
	}
	l.mu.Unlock()
}

// TakeDrops returns the messages dropped since the previous call and the
// time of the first of them, and starts counting anew: the counts of
// successive calls add up to Total.
func (l *Limiter) TakeDrops() (n uint64, since time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, s := l.dropped, l.since
	l.dropped, l.since, l.queued = 0, 0, false
	if n == 0 {
		return 0, time.Time{}
	}
	return n, time.Unix(0, s)
}

// ReturnDrops puts back drops a notice could not report; first reports
// whether the notifier must be told again.
func (l *Limiter) ReturnDrops(n uint64, since time.Time) (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropped += n
	if s := since.UnixNano(); l.since == 0 || s < l.since {
		l.since = s
	}
	first = !l.queued
	l.queued = true
	return first
}
