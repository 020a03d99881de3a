package redis

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the Redis backend's Prometheus metrics, labelled by shard
// (its index in the sorted shard list). A nil *Metrics records nothing.
type Metrics struct {
	bufferBytes *prometheus.GaugeVec
	writeErrors *prometheus.CounterVec
	flushes     *prometheus.CounterVec
	bufferFull  *prometheus.CounterVec
	written     *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	label := []string{"shard"}
	m := &Metrics{
		bufferBytes: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "plexus_redis_buffer_bytes",
			Help: "Bytes of accepted messages not yet written to the shard.",
		}, label),
		writeErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_redis_write_errors_total",
			Help: "Failed write rounds to the shard (each is retried).",
		}, label),
		flushes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_redis_flushes_total",
			Help: "Write rounds (pipelines of stream appends) completed.",
		}, label),
		bufferFull: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_redis_buffer_full_total",
			Help: "Appends refused with ErrLogFull because the buffer stayed full until their deadline.",
		}, label),
		written: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_redis_messages_written_total",
			Help: "Messages written to the shard.",
		}, label),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_redis_messages_dropped_total",
			Help: "Accepted messages given up after repeated non-retryable errors or at shutdown.",
		}, label),
		duplicates: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_redis_duplicate_batches_total",
			Help: "Batches not stored because the channel stored their idempotency key before.",
		}, label),
	}
	return m
}

// shardMetrics are one shard's children; the zero value records nothing.
type shardMetrics struct {
	bufferBytes                                        prometheus.Gauge
	writeErrors, flushes, bufferFull, written, dropped prometheus.Counter
	duplicates                                         prometheus.Counter
}

func (m *Metrics) shard(name string) shardMetrics {
	if m == nil {
		return shardMetrics{}
	}
	return shardMetrics{
		bufferBytes: m.bufferBytes.WithLabelValues(name),
		writeErrors: m.writeErrors.WithLabelValues(name),
		flushes:     m.flushes.WithLabelValues(name),
		bufferFull:  m.bufferFull.WithLabelValues(name),
		written:     m.written.WithLabelValues(name),
		dropped:     m.dropped.WithLabelValues(name),
		duplicates:  m.duplicates.WithLabelValues(name),
	}
}

func inc(c prometheus.Counter, n int) {
	if c != nil && n > 0 {
		c.Add(float64(n))
	}
}

func setGauge(g prometheus.Gauge, v int64) {
	if g != nil {
		g.Set(float64(v))
	}
}
