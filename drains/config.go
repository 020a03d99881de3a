package drains

import (
	"crypto/x509"
	"math/rand/v2"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// Config tunes delivery. Zero fields get the defaults noted.
type Config struct {
	// Retention is set on the log of every channel that has at least one
	// drain with a destination, and reset (zero Retention: the log's
	// default) when it has none. Zero: no extension for drains.
	Retention channels.Retention
	// DefaultRetention is the log's retention of a channel that sets
	// none: the base that a channel's own retention (channels.Channel
	// .Retention) changes when it has no drains (zero:
	// channels.DefaultRetention). The manager applies a channel's own
	// retention combined with the drain extension (see effectiveRetention).
	DefaultRetention channels.Retention
	// BatchBytes is the target size of one HTTP request body (default
	// 102400, Logplex's http_drain_target_bytes). Syslog writes are at most
	// min(BatchBytes, 64 KiB).
	BatchBytes int
	// ConnectTimeout bounds connecting, TLS handshake included (default 3s).
	ConnectTimeout time.Duration
	// RequestTimeout bounds one HTTP request (send, status line, headers and
	// discarded response body) or one syslog write (default 5s).
	RequestTimeout time.Duration
	// BackoffMin and BackoffMax shape retry delays: attempt k waits a
	// uniformly random time in [0, min(BackoffMax, BackoffMin·2^k))
	// (defaults 100ms and 30s).
	BackoffMin, BackoffMax time.Duration
	// UserAgent is sent by HTTP drains (default "Plexus").
	UserAgent string
	// CursorEvery is the longest time an acknowledged position may stay
	// unstored (default 200ms). Positions are always stored on stop.
	CursorEvery time.Duration
	// RootCAs verifies https and syslog+tls endpoints; nil means the system
	// pool.
	RootCAs *x509.CertPool
	// Node is this node's id, shown in DrainStatus.Node.
	Node string
}

// Defaults.
const (
	DefaultBatchBytes     = 102400
	DefaultConnectTimeout = 3 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultBackoffMin     = 100 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultUserAgent      = "Plexus"
	DefaultCursorEvery    = 200 * time.Millisecond

	maxSyslogWrite = 64 << 10
)

func (c Config) withDefaults() Config {
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.CursorEvery <= 0 {
		c.CursorEvery = DefaultCursorEvery
	}
	return c
}

// backoff returns the delay before retry attempt k (0-based): full jitter
// over an exponentially growing, capped window.
func (c Config) backoff(k int) time.Duration {
	d := c.BackoffMax
	if k < 30 {
		if w := c.BackoffMin << k; w > 0 && w < d {
			d = w
		}
	}
	return rand.N(d) + 1
}
