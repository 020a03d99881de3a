package drains

import (
	"context"

	"github.com/plexus-router/plexus/channels"
)

// ApplyRetention sets the log retention of every channel that has its own
// retention or a drain with a destination (see effectiveRetention). Run
// does it at every reconcile; call it once before input starts, so that
// the first messages are kept as the channels ask. It returns the store's
// error, if any.
func (m *Manager) ApplyRetention(ctx context.Context) error {
	drains, err := m.Store.Drains(ctx)
	if err != nil {
		return err
	}
	chans := make(map[string]bool)
	for _, d := range drains {
		if d.URL == "" {
			continue
		}
		if _, err := channels.ParseDrainURL(d.URL); err == nil {
			chans[d.ChannelID] = true
		}
	}
	m.applyRetention(ctx, chans)
	return nil
}

// applyRetention sets the effective retention of every channel with its
// own retention or in withDrains, and restores the default of channels
// it set before that have neither any more.
func (m *Manager) applyRetention(ctx context.Context, withDrains map[string]bool) {
	// Read and apply under one lock: a concurrent call with an older
	// reading never applies after a newer one.
	m.retMu.Lock()
	defer m.retMu.Unlock()
	own, err := m.Store.ChannelRetentions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.Logger.Error().Err(err).Msg("list channel retentions")
		}
		return
	}
	cfg := m.Config
	want := make(map[string]channels.Retention, len(own)+len(withDrains))
	if cfg.Retention != (channels.Retention{}) {
		for ch := range withDrains {
			want[ch] = effectiveRetention(cfg, nil, true)
		}
	}
	for ch, r := range own {
		want[ch] = effectiveRetention(cfg, &r, withDrains[ch])
	}
	if m.retained == nil {
		m.retained = make(map[string]channels.Retention)
	}
	for ch, r := range want {
		if cur, ok := m.retained[ch]; !ok || cur != r {
			m.Log.SetRetention(ch, r)
			m.retained[ch] = r
		}
	}
	for ch := range m.retained {
		if _, ok := want[ch]; !ok {
			m.Log.SetRetention(ch, channels.Retention{})
			delete(m.retained, ch)
		}
	}
}

// effectiveRetention is the log retention of a channel: the log's default,
// or the drain extension (cfg.Retention) when the channel has drains,
// with the bounds the channel's own retention gives replacing those of
// that base (messages → Count, bytes, age). A result without any bound
// is expressed as an unbounded Count, since the zero Retention means the
// log's default.
func effectiveRetention(cfg Config, own *channels.ChannelRetention, hasDrains bool) channels.Retention {
	base := cfg.DefaultRetention
	if base == (channels.Retention{}) {
		base = channels.DefaultRetention
	}
	if hasDrains && cfg.Retention != (channels.Retention{}) {
		base = cfg.Retention
	}
	r := own.Apply(base)
	if r == (channels.Retention{}) {
		r.Count = channels.UnboundedCount
	}
	return r
}
