package router

import (
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/syslog"
)

// Dropped input is made visible three ways: counted in
// plexus_messages_dropped_total{input,reason} (sink.go); logged, at most
// one line per reason every DropLogEvery, naming the reason, the listener
// and the peer but never the message (a token must not reach the logs);
// and offered to admins tapping the node (GET /v3/dropped, `plexus tap`)
// as a bounded live sample with tokens redacted and lines truncated.
//
// Nothing of this costs more than a sampler check and an atomic load per
// dropped message while the sampler is quiet and nobody taps.

// DropReason is why a message was not stored; its String is the reason
// label of plexus_messages_dropped_total.
type DropReason uint8

// Drop reasons.
const (
	DropMalformed DropReason = iota
	DropUnknownToken
	DropRateLimit
	DropLogFull
	nDropReasons
)

var dropReasons = [nDropReasons]string{
	DropMalformed:    "malformed",
	DropUnknownToken: "unknown_token",
	DropRateLimit:    "rate_limit",
	DropLogFull:      "log_full",
}

func (r DropReason) String() string {
	if r < nDropReasons {
		return dropReasons[r]
	}
	return "unknown"
}

// DropLogEvery is how often a drop reason is logged at most.
const DropLogEvery = 10 * time.Second

// MaxDroppedLine bounds the line of a Dropped (bytes, after redaction).
const MaxDroppedLine = 512

// tapBuffer is how many dropped lines wait for one tap; more are skipped
// (and counted in Tap.Skipped).
const tapBuffer = 64

// Dropped is one dropped message as a tap shows it.
type Dropped struct {
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason"`
	Listener   string    `json:"listener"`              // tcp, tls, udp or http
	RemoteAddr string    `json:"remote_addr,omitempty"` // unknown for UDP
	Line       string    `json:"line"`                  // tokens redacted, at most MaxDroppedLine bytes
	Count      int       `json:"count,omitempty"`       // messages dropped at once (a failed commit, an HTTP request), when more than one
}

// drops holds the sampled loggers and the taps.
type drops struct {
	log     [nDropReasons]zerolog.Logger
	tapping atomic.Int32           // len(*taps): checked on the drop path
	taps    atomic.Pointer[[]*Tap] // copy on write under mu
	mu      sync.Mutex
	now     func() time.Time
}

func (d *drops) init(now func() time.Time) {
	d.now = now
	d.setLogger(zerolog.Nop())
}

func (d *drops) setLogger(l zerolog.Logger) {
	for i := range d.log {
		d.log[i] = l.Sample(&zerolog.BurstSampler{Burst: 1, Period: DropLogEvery}).
			With().Str("reason", dropReasons[i]).Logger()
	}
}

// SetLogger sets the logger of dropped input (one line per reason every
// DropLogEvery at most, level warn). Call it before the router serves.
func (r *Router) SetLogger(l zerolog.Logger) { r.drops.setLogger(l) }

// Drop reports n messages dropped for reason, from listener and peer
// remote (empty when unknown). msg is one of them (nil: none at hand); it
// is only read during the call, never logged, and shown to taps redacted
// and truncated. Cheap when nothing is logged and nobody taps.
func (r *Router) Drop(reason DropReason, listener, remote string, msg []byte, n int) {
	d := &r.drops
	if ev := d.log[reason].Warn(); ev != nil {
		ev.Str("listener", listener)
		if remote != "" {
			ev.Str("remote_addr", remote)
		}
		if n > 1 {
			ev.Int("count", n)
		}
		ev.Msg("input dropped (one line per reason every 10s; see plexus_messages_dropped_total)")
	}
	if d.tapping.Load() > 0 {
		d.publish(reason, listener, remote, msg, n)
	}
}

func (d *drops) publish(reason DropReason, listener, remote string, msg []byte, n int) {
	taps := d.taps.Load()
	if taps == nil {
		return
	}
	room := false
	for _, t := range *taps {
		if len(t.c) < cap(t.c) {
			room = true
			break
		}
	}
	if !room {
		for _, t := range *taps {
			t.skipped.Add(1)
		}
		return // do not even build the line
	}
	v := Dropped{Time: d.now(), Reason: reason.String(), Listener: listener, RemoteAddr: remote, Line: RedactLine(msg, MaxDroppedLine)}
	if n > 1 {
		v.Count = n
	}
	for _, t := range *taps {
		select {
		case t.c <- v:
		default:
			t.skipped.Add(1)
		}
	}
}

// Tap receives a live sample of dropped input. Close it when done.
type Tap struct {
	c       chan Dropped
	skipped atomic.Int64
	d       *drops
	once    sync.Once
}

// Tap starts a tap on dropped input.
func (r *Router) Tap() *Tap {
	d := &r.drops
	t := &Tap{c: make(chan Dropped, tapBuffer), d: d}
	d.mu.Lock()
	defer d.mu.Unlock()
	var next []*Tap
	if p := d.taps.Load(); p != nil {
		next = append(next, *p...)
	}
	next = append(next, t)
	d.taps.Store(&next)
	d.tapping.Store(int32(len(next)))
	return t
}

// C delivers the dropped lines. It is never closed.
func (t *Tap) C() <-chan Dropped { return t.c }

// Skipped returns and resets how many dropped lines this tap missed
// because it was full.
func (t *Tap) Skipped() int64 { return t.skipped.Swap(0) }

// Close stops the tap.
func (t *Tap) Close() {
	t.once.Do(func() {
		d := t.d
		d.mu.Lock()
		defer d.mu.Unlock()
		var next []*Tap
		for _, x := range *d.taps.Load() {
			if x != t {
				next = append(next, x)
			}
		}
		d.taps.Store(&next)
		d.tapping.Store(int32(len(next)))
	})
}

// RedactLine returns msg for display to an admin: the token in its token
// position and every token-like word elsewhere replaced
// by "t.…" (see redactTokens), then cut to at most max bytes at a character
// boundary.
func RedactLine(msg []byte, max int) string {
	if len(msg) == 0 {
		return ""
	}
	out := make([]byte, 0, min(len(msg), max)+8)
	i, j, ok := syslog.FindToken(msg)
	if !ok {
		i, j = len(msg), len(msg)
	}
	out = redactTokens(out, msg[:i])
	if ok {
		if j-i >= 2 && msg[i] == 't' && msg[i+1] == '.' {
			out = append(out, "t.…"...)
		} else {
			out = append(out, "…"...)
		}
	}
	out = redactTokens(out, msg[j:])
	if len(out) > max {
		k := max
		for k > 0 && !utf8.RuneStart(out[k]) {
			k--
		}
		out = out[:k]
	}
	return string(out)
}

// redactTokens appends s to dst with every token-like word replaced by
// "t.…": "t." at the start of a word followed by at least 8 hex digits
// and dashes (a token, also a cut or mistyped one).
func redactTokens(dst, s []byte) []byte {
	for k := 0; k < len(s); {
		if s[k] == 't' && k+1 < len(s) && s[k+1] == '.' && (k == 0 || !isWordByte(s[k-1])) {
			e := k + 2
			for e < len(s) && isTokenByte(s[e]) {
				e++
			}
			if e-k-2 >= 8 {
				dst = append(dst, "t.…"...)
				k = e
				continue
			}
		}
		dst = append(dst, s[k])
		k++
	}
	return dst
}

func isTokenByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '-'
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '.'
}
