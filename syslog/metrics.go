package syslog

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the listeners' Prometheus metrics, labelled by listener
// ("tcp", "tls", "udp"). A nil *Metrics records nothing.
type Metrics struct {
	connections      *prometheus.GaugeVec
	connectionsTotal *prometheus.CounterVec
	rejected         *prometheus.CounterVec
	frames           *prometheus.CounterVec
	malformed        *prometheus.CounterVec
	oversize         *prometheus.CounterVec
}

// NewMetrics creates the listener metrics and registers them with reg (nil:
// not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	label := []string{"listener"}
	m := &Metrics{
		connections: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "plexus_syslog_connections",
			Help: "Open syslog connections.",
		}, label),
		connectionsTotal: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_syslog_connections_total",
			Help: "Accepted syslog connections.",
		}, label),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_syslog_connections_rejected_total",
			Help: "Syslog connections closed at once because MaxConns was reached.",
		}, label),
		frames: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_syslog_frames_total",
			Help: "Frames (messages) read and handed to the router.",
		}, label),
		malformed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_syslog_malformed_total",
			Help: "Frames that could not be read (e.g. truncated octet-counted frames).",
		}, label),
		oversize: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_syslog_oversize_total",
			Help: "Frames or datagrams longer than MaxFrame, discarded.",
		}, label),
	}
	return m
}

// listenerMetrics are one listener's metric children, looked up once so the
// hot path does no label lookups. The zero value records nothing.
type listenerMetrics struct {
	connections                 prometheus.Gauge
	connectionsTotal, rejected  prometheus.Counter
	frames, malformed, oversize prometheus.Counter
}

func (m *Metrics) listener(name string) listenerMetrics {
	if m == nil {
		return listenerMetrics{}
	}
	return listenerMetrics{
		connections:      m.connections.WithLabelValues(name),
		connectionsTotal: m.connectionsTotal.WithLabelValues(name),
		rejected:         m.rejected.WithLabelValues(name),
		frames:           m.frames.WithLabelValues(name),
		malformed:        m.malformed.WithLabelValues(name),
		oversize:         m.oversize.WithLabelValues(name),
	}
}

func add(c prometheus.Counter, n int) {
	if c != nil && n > 0 {
		c.Add(float64(n))
	}
}

func (l listenerMetrics) connOpened() {
	if l.connections != nil {
		l.connections.Inc()
		l.connectionsTotal.Inc()
	}
}

func (l listenerMetrics) connClosed() {
	if l.connections != nil {
		l.connections.Dec()
	}
}

func (l listenerMetrics) connRejected() { add(l.rejected, 1) }

// counts are one reader's counters since they were last added to the
// metrics; they are added once per read, not once per frame.
type counts struct{ frames, malformed, oversize int }

func (l listenerMetrics) add(c *counts) {
	add(l.frames, c.frames)
	add(l.malformed, c.malformed)
	add(l.oversize, c.oversize)
	*c = counts{}
}
