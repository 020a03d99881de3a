package drains

import (
	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/stats"
	"github.com/plexus-router/plexus/syslog"
	"github.com/plexus-router/plexus/syslog/filter"
)

// setOptions applies the drain's filter and format to its frames. A
// stored filter that does not compile (the API refuses those; another
// writer of the store may not) lets nothing through, and says so once.
func (w *worker) setOptions() {
	w.f.raw = w.drain.Format == channels.FormatRFC5424
	if w.drain.Filter == "" {
		return
	}
	m, err := filter.Compile(w.drain.Filter)
	if err != nil {
		w.log.Error().Err(err).Msg("drain filter does not compile: delivering nothing")
		w.f.matchNone = true
		return
	}
	w.f.match = m
	if w.m.Stats != nil {
		w.f.counts = w.m.Stats.Channel(w.drain.ChannelID)
	}
}

// countFiltered counts a message the filter skipped in the channel's stats.
func (f *format) countFiltered(fl syslog.Fields) {
	if f.counts == nil {
		return
	}
	pri := 0
	for _, c := range fl.Pri {
		pri = pri*10 + int(c-'0')
	}
	f.counts.DroppedBytes(stats.Filter, fl.AppName, fl.ProcID, pri&7)
}
