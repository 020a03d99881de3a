package embedded

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the embedded log's Prometheus metrics.
type Metrics struct {
	fsync       prometheus.Histogram
	commits     prometheus.Counter
	syncErrors  prometheus.Counter
	writeErrors prometheus.Counter
	diskFull    prometheus.Counter
	diskReads   prometheus.Counter
	corrupt     *prometheus.CounterVec
	tornBytes   prometheus.Counter
	evicted     *prometheus.CounterVec
	// the two reasons of evicted, resolved once
	evictedRetention, evictedMaxDisk prometheus.Counter
	diskBytes                        prometheus.Gauge
	segments                         prometheus.Gauge
	cacheBytes                       prometheus.Gauge
	duplicates                       prometheus.Counter
}

// NewMetrics registers the metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		fsync: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "plexus_log_fsync_seconds",
			Help:    "Time a group commit of the channel log spent syncing files.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		commits: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_log_commits_total",
			Help: "Group commits of the channel log.",
		}),
		syncErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_log_sync_errors_total",
			Help: "Group commits whose fsync failed (retried; nothing is shown to readers until it succeeds).",
		}),
		writeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_log_write_errors_total",
			Help: "Appends that failed to write to a segment file for a reason other than a full disk.",
		}),
		diskFull: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_log_disk_full_total",
			Help: "Appends that found the disk full (they wait for space, or answer 503).",
		}),
		diskReads: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_log_disk_reads_total",
			Help: "Records read from segment files because they had left the memory cache.",
		}),
		corrupt: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_log_corrupt_total",
			Help: "Damage found in the channel log: a torn or corrupt record at recovery (record), a record failing its checksum when read (read), an unreadable checkpoint (checkpoint).",
		}, []string{"where"}),
		tornBytes: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_log_damaged_bytes_total",
			Help: "Bytes of segment files cut off or skipped at recovery because of damage.",
		}),
		evicted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_log_evicted_messages_total",
			Help: "Messages that left the channel log, by retention or by the disk bound.",
		}, []string{"reason"}),
		diskBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "plexus_log_disk_bytes",
			Help: "Bytes in the channel log's segment files.",
		}),
		segments: f.NewGauge(prometheus.GaugeOpts{
			Name: "plexus_log_segments",
			Help: "Segment files of the channel log.",
		}),
		cacheBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "plexus_log_cache_bytes",
			Help: "Memory holding the newest part of the channel log.",
		}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "plexus_log_duplicate_batches_total",
			Help: "Batches not stored because their idempotency key was stored before.",
		}),
	}
	m.evictedRetention = m.evicted.WithLabelValues("retention")
	m.evictedMaxDisk = m.evicted.WithLabelValues("max_disk")
	return m
}
