package drains

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the drain manager's Prometheus metrics, labelled by drain id.
// A drain's label sets are deleted when this node stops delivering it.
type Metrics struct {
	delivered   *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	filtered    *prometheus.CounterVec
	requests    *prometheus.CounterVec
	lagMessages *prometheus.GaugeVec
	lagSeconds  *prometheus.GaugeVec
	l14         *prometheus.CounterVec
	unsupported prometheus.Gauge
}

// Dropped reasons.
const (
	reasonRetention   = "retention"
	reasonRejected    = "rejected"
	reasonUnparseable = "unparseable"
)

// Request results.
const (
	resultOK       = "ok"       // HTTP 2xx, syslog write completed
	resultRejected = "rejected" // HTTP 3xx/4xx (not 408/429): batch dropped
	resultRetry    = "retry"    // HTTP 408, 429, 5xx: batch retried
	resultError    = "error"    // connect, TLS, write, read or timeout: batch retried
)

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		delivered: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_drain_delivered_total",
			Help: "Messages delivered to a drain (acknowledged), L10 lines excluded.",
		}, []string{"drain_id"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_drain_dropped_total",
			Help: "Messages a drain lost: evicted by retention before delivery, rejected by the endpoint (HTTP 4xx), or unparseable.",
		}, []string{"drain_id", "reason"}),
		filtered: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_drain_filtered_total",
			Help: "Messages a drain's filter skipped (not lost: not meant for the drain).",
		}, []string{"drain_id"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_drain_requests_total",
			Help: "Delivery attempts (HTTP requests, syslog writes) by result: ok, rejected, retry, error.",
		}, []string{"drain_id", "result"}),
		lagMessages: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "plexus_drain_lag_messages",
			Help: "Messages in the channel log not yet delivered to the drain.",
		}, []string{"drain_id"}),
		lagSeconds: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "plexus_drain_lag_seconds",
			Help: "Age of the oldest message not yet delivered to the drain (0 when caught up).",
		}, []string{"drain_id"}),
		l14: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_drain_l14_total",
			Help: "L14 (certificate validation) notices appended to a drain's channel log.",
		}, []string{"drain_id"}),
		unsupported: f.NewGauge(prometheus.GaugeOpts{
			Name: "plexus_drains_unsupported",
			Help: "Drains with a destination this node cannot deliver to (ignored).",
		}),
	}
	return m
}

// drainMetrics holds one drain's metric children, looked up once.
type drainMetrics struct {
	delivered                              prometheus.Counter
	droppedRetention, droppedRejected      prometheus.Counter
	droppedUnparseable                     prometheus.Counter
	filtered                               prometheus.Counter
	reqOK, reqRejected, reqRetry, reqError prometheus.Counter
	lagMessages, lagSeconds                prometheus.Gauge
	l14                                    prometheus.Counter
}

func (m *Metrics) forDrain(id int64) *drainMetrics {
	l := strconv.FormatInt(id, 10)
	return &drainMetrics{
		delivered:          m.delivered.WithLabelValues(l),
		droppedRetention:   m.dropped.WithLabelValues(l, reasonRetention),
		droppedRejected:    m.dropped.WithLabelValues(l, reasonRejected),
		droppedUnparseable: m.dropped.WithLabelValues(l, reasonUnparseable),
		filtered:           m.filtered.WithLabelValues(l),
		reqOK:              m.requests.WithLabelValues(l, resultOK),
		reqRejected:        m.requests.WithLabelValues(l, resultRejected),
		reqRetry:           m.requests.WithLabelValues(l, resultRetry),
		reqError:           m.requests.WithLabelValues(l, resultError),
		lagMessages:        m.lagMessages.WithLabelValues(l),
		lagSeconds:         m.lagSeconds.WithLabelValues(l),
		l14:                m.l14.WithLabelValues(l),
	}
}

// forget deletes every label set of drain id.
func (m *Metrics) forget(id int64) {
	l := prometheus.Labels{"drain_id": strconv.FormatInt(id, 10)}
	m.delivered.DeletePartialMatch(l)
	m.dropped.DeletePartialMatch(l)
	m.filtered.DeletePartialMatch(l)
	m.requests.DeletePartialMatch(l)
	m.lagMessages.DeletePartialMatch(l)
	m.lagSeconds.DeletePartialMatch(l)
	m.l14.DeletePartialMatch(l)
}
