package router

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/syslog"
)

// Rate limits. Each channel's channels.Limiter comes with its route, so
// the check costs no lookup, takes only the channel's own lock and
// allocates nothing:
//
//   - syslog input (TCP, UDP, TLS): each message over the limit is dropped
//     and counted on the limiter; the notifier (RunNotices) appends one L16
//     line per channel at most once per interval, each counting the drops
//     since the previous one, so that their sum is exact;
//   - HTTP input: the request's messages are counted per channel as they
//     are added and taken all or nothing by TakeLimits before the commit
//     (429 with Retry-After otherwise); a failed commit gives them back.

// DefaultNoticeInterval is how often L16 notices are written at most, per
// channel.
const DefaultNoticeInterval = time.Second

// SetDefaultRateLimit sets the limit of channels without one of their own
// (the zero RateLimit: unlimited).
func (r *Router) SetDefaultRateLimit(l channels.RateLimit) {
	if l.IsZero() {
		r.defLimit.Store(nil)
		return
	}
	r.defLimit.Store(&l)
}

// limitUse is what an HTTP request takes from one channel's limiter.
type limitUse struct {
	l        *channels.Limiter
	n, bytes int
}

func (in *Ingester) now() int64 {
	if in.nowNs == 0 {
		in.nowNs = in.r.now().UnixNano()
	}
	return in.nowNs
}

// admit checks one message of size bytes against its channel's limit:
// syslog input is limited message by message; HTTP input is only counted
// here (see TakeLimits).
func (in *Ingester) admit(rt channels.Route, size int) bool {
	l := rt.Limiter
	if l == nil {
		return true
	}
	if in.limitEach {
		return in.admitLeased(l, size)
	}
	for i := range in.uses {
		if in.uses[i].l == l {
			in.uses[i].n++
			in.uses[i].bytes += size
			return true
		}
	}
	in.uses = append(in.uses, limitUse{l: l, n: 1, bytes: size})
	return true
}

// lease is what an Ingester holds of a limiter's buckets for syslog input
// (Limiter.Lease): messages and bytes it admits without taking the lock,
// and gives back at the next Commit.
type lease struct {
	l        *channels.Limiter
	n, bytes int
}

// Lease sizes: up to this many messages and bytes at a time.
const (
	leaseMessages = 256
	leaseBytes    = 64 << 10
)

// admitLeased admits one syslog message of size bytes from in's lease of
// l, renewing the lease when it runs out; a message the limit refuses is
// counted as dropped.
func (in *Ingester) admitLeased(l *channels.Limiter, size int) bool {
	var ls *lease
	for i := range in.leases {
		if in.leases[i].l == l {
			ls = &in.leases[i]
			break
		}
	}
	if ls != nil && ls.n >= 1 && ls.bytes >= size {
		ls.n--
		ls.bytes -= size
		return true
	}
	n, b, ok, first := l.Lease(in.now(), leaseMessages, leaseBytes, size, in.r.defLimit.Load())
	if first {
		in.r.notices.add(l)
	}
	if !ok {
		return false
	}
	if ls == nil {
		in.leases = append(in.leases, lease{l: l})
		ls = &in.leases[len(in.leases)-1]
	}
	ls.n += n - 1
	ls.bytes += b - size
	return true
}

// returnLeases gives back what is left of the leases.
func (in *Ingester) returnLeases() {
	if len(in.leases) == 0 {
		return
	}
	def := in.r.defLimit.Load()
	for _, ls := range in.leases {
		if ls.n > 0 || ls.bytes > 0 {
			ls.l.Refund(ls.n, ls.bytes, def)
		}
	}
	clear(in.leases)
	in.leases = in.leases[:0]
}

// TakeLimits takes the messages added since the last Commit from their
// channels' rate limits, all or nothing (HTTP input calls it before
// committing). When a channel is over its limit nothing is taken, and
// retryAfter says when the request would be admitted. Drops are not
// counted: the client is told and may retry.
func (in *Ingester) TakeLimits() (ok bool, retryAfter time.Duration) {
	def := in.r.defLimit.Load()
	now := in.now()
	for i, u := range in.uses {
		if ok, wait := u.l.Take(now, u.n, u.bytes, def); !ok {
			for _, v := range in.uses[:i] {
				v.l.Refund(v.n, v.bytes, def)
			}
			return false, wait
		}
	}
	in.taken = true
	return true, 0
}

// refundLimits gives back what TakeLimits took (the commit failed).
func (in *Ingester) refundLimits() {
	if !in.taken {
		return
	}
	def := in.r.defLimit.Load()
	for _, u := range in.uses {
		u.l.Refund(u.n, u.bytes, def)
	}
	in.taken = false
}

// notices is the set of limiters with drops not yet reported.
type notices struct {
	mu       sync.Mutex
	pending  []*channels.Limiter
	dropping map[string]*channels.Limiter // every channel that dropped since start (top offenders)

	written, failed prometheus.Counter
}

func (n *notices) init() {
	n.dropping = map[string]*channels.Limiter{}
	n.written = prometheus.NewCounter(prometheus.CounterOpts{Name: "plexus_ratelimit_notices_total", Help: "L16 (rate limit) notices appended to channel logs."})
	n.failed = prometheus.NewCounter(prometheus.CounterOpts{Name: "plexus_ratelimit_notice_errors_total", Help: "Appends of L16 notices that failed (retried at the next interval)."})
}

func (n *notices) add(l *channels.Limiter) {
	n.mu.Lock()
	n.pending = append(n.pending, l)
	n.dropping[l.ChannelID()] = l
	n.mu.Unlock()
}

func (n *notices) take() []*channels.Limiter {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.pending
	n.pending = nil
	return p
}

// RunNotices appends the L16 notices of channels that dropped input, at
// most once per interval per channel, until ctx is done; then it writes
// the last ones (within a few seconds) and returns.
func (r *Router) RunNotices(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultNoticeInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			r.WriteNotices(fctx)
			cancel()
			return
		case <-t.C:
			r.WriteNotices(ctx)
		}
	}
}

// WriteNotices appends one L16 notice to each channel that dropped input
// since its previous notice. What cannot be appended is reported next time.
func (r *Router) WriteNotices(ctx context.Context) {
	ls := r.notices.take()
	if len(ls) == 0 {
		return
	}
	type taken struct {
		l     *channels.Limiter
		n     uint64
		since time.Time
	}
	now := r.now()
	var (
		batches []*channels.Batch
		took    []taken
		msg     []byte
	)
	for _, l := range ls {
		n, since := l.TakeDrops()
		if n == 0 || l.Deleted() {
			continue
		}
		b := &channels.Batch{ChannelID: l.ChannelID(), Time: now.UnixNano()}
		msg = syslog.L16Message(msg[:0], n, since, now)
		b.Add(msg)
		batches = append(batches, b)
		took = append(took, taken{l, n, since})
	}
	if len(batches) == 0 {
		return
	}
	if err := r.log.Append(ctx, batches); err != nil {
		r.notices.failed.Inc()
		for _, t := range took {
			if t.l.ReturnDrops(t.n, t.since) {
				r.notices.add(t.l)
			}
		}
		return
	}
	r.notices.written.Add(float64(len(batches)))
}

// TopOffenders is how many channels plexus_ratelimit_top_dropped_total
// shows: only the channels that dropped the most, never one series per
// channel.
const TopOffenders = 10

// Collector returns the rate limits' metrics: notices written and, for
// the TopOffenders channels that dropped the most input since start,
// plexus_ratelimit_top_dropped_total{channel_id}. The total of drops is
// plexus_messages_dropped_total{reason="rate_limit"}.
func (r *Router) Collector() prometheus.Collector { return (*limitCollector)(r) }

type limitCollector Router

var topDroppedDesc = prometheus.NewDesc("plexus_ratelimit_top_dropped_total",
	"Messages dropped by the rate limit since start, for the channels that dropped the most (at most 10 series).",
	[]string{"channel_id"}, nil)

func (c *limitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- topDroppedDesc
	c.notices.written.Describe(ch)
	c.notices.failed.Describe(ch)
}

func (c *limitCollector) Collect(ch chan<- prometheus.Metric) {
	c.notices.written.Collect(ch)
	c.notices.failed.Collect(ch)
	type offender struct {
		id    string
		total uint64
	}
	n := &c.notices
	n.mu.Lock()
	ls := make([]offender, 0, len(n.dropping))
	for id, l := range n.dropping {
		if l.Deleted() {
			delete(n.dropping, id)
			continue
		}
		ls = append(ls, offender{id, l.Total()})
	}
	n.mu.Unlock()
	slices.SortFunc(ls, func(a, b offender) int {
		if c := cmp.Compare(b.total, a.total); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	for _, o := range ls[:min(len(ls), TopOffenders)] {
		ch <- prometheus.MustNewConstMetric(topDroppedDesc, prometheus.CounterValue, float64(o.total), o.id)
	}
}
