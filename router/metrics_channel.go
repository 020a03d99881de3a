package router

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plexus-router/plexus/channels"
)

// MetricsChannel appends Plexus's own counters to a channel as log lines
// (Logplex's INTERNAL_METRICS_CHANNEL_ID), so the channel's drains and
// tails see them. Every Interval each node appends one line per counter:
//
//	<190>1 <time> plexus plexus metrics - - plexus_stats node=<node> counter=message_received value=<since the previous line> total=<since start>
//
// Counters: message_received (plexus_messages_received_total),
// message_processed (plexus_messages_stored_total), drain_delivered
// (plexus_drain_delivered_total), drain_dropped
// (plexus_drain_dropped_total), each summed over its labels on this node.
type MetricsChannel struct {
	ChannelID string
	Node      string
	Interval  time.Duration // default one minute
	Gatherer  prometheus.Gatherer
	Log       channels.Log
	Now       func() time.Time // default time.Now
	OnError   func(error)      // told about a failed report (the next one is tried anyway)

	last map[string]float64
}

// MetricsChannelCounters are the counters MetricsChannel reports, in
// order: line name → metric name.
var MetricsChannelCounters = []struct{ Name, Metric string }{
	{"message_received", "plexus_messages_received_total"},
	{"message_processed", "plexus_messages_stored_total"},
	{"drain_delivered", "plexus_drain_delivered_total"},
	{"drain_dropped", "plexus_drain_dropped_total"},
}

// Run appends the lines every Interval until ctx is done.
func (m *MetricsChannel) Run(ctx context.Context) {
	iv := m.Interval
	if iv <= 0 {
		iv = time.Minute
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Report(ctx); err != nil && ctx.Err() == nil && m.OnError != nil {
				m.OnError(err)
			}
		}
	}
}

// Report appends one line per counter now.
func (m *MetricsChannel) Report(ctx context.Context) error {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	mfs, err := m.Gatherer.Gather()
	if err != nil {
		return fmt.Errorf("metrics channel: gather: %w", err)
	}
	totals := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if c := mt.GetCounter(); c != nil {
				totals[mf.GetName()] += c.GetValue()
			}
		}
	}
	if m.last == nil {
		m.last = map[string]float64{}
	}
	t := now()
	b := &channels.Batch{ChannelID: m.ChannelID, Time: t.UnixNano()}
	var line []byte
	for _, c := range MetricsChannelCounters {
		total := totals[c.Metric]
		line = append(line[:0], "<190>1 "...)
		line = t.UTC().AppendFormat(line, "2006-01-02T15:04:05.000000Z07:00")
		line = append(line, " plexus plexus metrics - - plexus_stats node="...)
		line = append(line, m.Node...)
		line = append(line, " counter="...)
		line = append(line, c.Name...)
		line = append(line, " value="...)
		line = strconv.AppendFloat(line, total-m.last[c.Name], 'f', -1, 64)
		line = append(line, " total="...)
		line = strconv.AppendFloat(line, total, 'f', -1, 64)
		b.Add(line)
	}
	if err := m.Log.Append(ctx, []*channels.Batch{b}); err != nil {
		return fmt.Errorf("metrics channel %s: append: %w", m.ChannelID, err)
	}
	for _, c := range MetricsChannelCounters {
		m.last[c.Name] = totals[c.Metric]
	}
	return nil
}
