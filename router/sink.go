package router

import (
	"context"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/plexus-router/plexus/syslog"
)

// NewSink returns a sink for one syslog connection or UDP reader
// (syslog.Handler). Frames are routed by their own token and appended at
// each Flush; Flush blocks while the log cannot admit them (back-pressure).
func (r *Router) NewSink(proto string) syslog.Sink {
	in := r.Ingester()
	in.limitEach = true
	return &sink{r: r, in: in, proto: proto, c: r.metrics.input(proto), limitedC: r.metrics.dropped.WithLabelValues(proto, "rate_limit")}
}

type sink struct {
	r      *Router
	in     *Ingester
	proto  string
	remote string // the peer (TCP, TLS), for the log of dropped input
	c      inputCounters
	// counted since the last Flush, added to the shared counters once per
	// read rather than once per message
	received, malformed, unknown float64
	limited                      float64
	limitedC                     prometheus.Counter
}

func (s *sink) Frame(msg []byte) {
	s.received++
	switch s.in.Add(msg) {
	case nil:
	case ErrMalformed:
		s.malformed++
		s.r.Drop(DropMalformed, s.proto, s.remote, msg, 1)
	case ErrUnknownToken:
		s.unknown++
		s.r.Drop(DropUnknownToken, s.proto, s.remote, msg, 1)
	case ErrRateLimited:
		s.limited++
		s.r.Drop(DropRateLimit, s.proto, s.remote, msg, 1)
	}
}

// SetRemote is told the peer of a TCP or TLS connection (syslog.PeerSink).
func (s *sink) SetRemote(addr net.Addr) {
	if addr != nil {
		s.remote = addr.String()
	}
}

func (s *sink) Flush(ctx context.Context) error {
	n := s.in.Len()
	err := s.in.Commit(ctx)
	s.c.add(s.received, n, err, s.malformed, s.unknown)
	if err != nil && n > 0 {
		s.r.Drop(DropLogFull, s.proto, s.remote, nil, n)
	}
	if s.limited > 0 {
		s.limitedC.Add(s.limited)
	}
	s.received, s.malformed, s.unknown, s.limited = 0, 0, 0, 0
	return err
}

func (s *sink) Close() {
	if s.in != nil {
		s.in.Release()
		s.in = nil
	}
}

// Metrics counts what the router did with messages, by input.
type Metrics struct {
	received *prometheus.CounterVec
	stored   *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

// NewMetrics registers the router's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_messages_received_total",
			Help: "Messages that reached the router, by input.",
		}, []string{"input"}),
		stored: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_messages_stored_total",
			Help: "Messages appended to channel logs, by input.",
		}, []string{"input"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_messages_dropped_total",
			Help: "Messages not stored, by input and reason (malformed, unknown_token, log_full, rate_limit).",
		}, []string{"input", "reason"}),
	}
	return m
}

// Count records the outcome of one HTTP request or other non-sink input:
// received messages, of which stored were appended.
func (m *Metrics) Count(input string, received, stored int, reason string) {
	c := m.input(input)
	c.received.Add(float64(received))
	c.stored.Add(float64(stored))
	if d := received - stored; d > 0 && reason != "" {
		m.dropped.WithLabelValues(input, reason).Add(float64(d))
	}
}

type inputCounters struct {
	received, stored, malformed, unknown, full prometheus.Counter
}

func (m *Metrics) input(proto string) inputCounters {
	return inputCounters{
		received:  m.received.WithLabelValues(proto),
		stored:    m.stored.WithLabelValues(proto),
		malformed: m.dropped.WithLabelValues(proto, "malformed"),
		unknown:   m.dropped.WithLabelValues(proto, "unknown_token"),
		full:      m.dropped.WithLabelValues(proto, "log_full"),
	}
}

func (c inputCounters) add(received float64, added int, err error, malformed, unknown float64) {
	if received > 0 {
		c.received.Add(received)
	}
	if malformed > 0 {
		c.malformed.Add(malformed)
	}
	if unknown > 0 {
		c.unknown.Add(unknown)
	}
	if added > 0 {
		if err == nil {
			c.stored.Add(float64(added))
		} else {
			c.full.Add(float64(added))
		}
	}
}
