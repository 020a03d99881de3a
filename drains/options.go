package drains

import (
	"github.com/plexus-router/plexus/channels"
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
}
