package api

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics counts what the HTTP side does.
type Metrics struct {
	logsRequests       *prometheus.CounterVec
	logsMessages       prometheus.Counter
	tailSessions       prometheus.Gauge
	sessionsCreated    prometheus.Counter
	sessionUnparseable prometheus.Counter
	apiRequests        *prometheus.CounterVec

	logsByCode map[int]prometheus.Counter // resolved once: no label work per request
}

// NewMetrics registers the HTTP metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		logsRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_http_logs_requests_total",
			Help: "POST /logs requests, by status code.",
		}, []string{"code"}),
		logsMessages: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_http_logs_messages_total",
			Help: "Messages stored from POST /logs requests.",
		}),
		tailSessions: f.NewGauge(prometheus.GaugeOpts{
			Name: "plexus_tail_sessions",
			Help: "Sessions currently following live messages.",
		}),
		sessionsCreated: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_sessions_created_total",
			Help: "Sessions created (legacy and v3 routes).",
		}),
		sessionUnparseable: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_session_unparseable_total",
			Help: "Stored messages a session skipped because they do not parse as RFC 5424 with MSGID and SD (never shown, as in Logplex).",
		}),
		apiRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_api_requests_total",
			Help: "Management API requests, by route template and status code.",
		}, []string{"route", "code"}),
		logsByCode: map[int]prometheus.Counter{},
	}
	for _, code := range []int{204, 400, 401, 403, 404, 405, 406, 413, 415, 500, 503} {
		m.logsByCode[code] = m.logsRequests.WithLabelValues(strconv.Itoa(code))
	}
	return m
}

func (m *Metrics) logsRequest(code int) {
	if c, ok := m.logsByCode[code]; ok {
		c.Inc()
		return
	}
	m.logsRequests.WithLabelValues(strconv.Itoa(code)).Inc()
}
