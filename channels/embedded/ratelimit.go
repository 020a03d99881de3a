package embedded

import (
	"context"

	"github.com/plexus-router/plexus/channels"
)

// SetChannelRateLimit implements Store: the channel record, rate limit
// included, is journaled as any channel change.
func (s *Store) SetChannelRateLimit(ctx context.Context, id string, rl *channels.RateLimit) (channels.Channel, error) {
	if rl != nil {
		if err := rl.Validate(); err != nil {
			return channels.Channel{}, err
		}
		if rl.IsZero() {
			rl = nil
		}
	}
	if err := s.begin(ctx); err != nil {
		return channels.Channel{}, err
	}
	defer s.mu.Unlock()
	ch, ok := s.reg.Channel(id)
	if !ok {
		return channels.Channel{}, channels.ErrChannelNotFound
	}
	if rl != nil {
		c := *rl
		rl = &c
	}
	ch.RateLimit = rl
	if err := s.commit(journalEntry{Op: opChannel, Channel: &ch}); err != nil {
		return channels.Channel{}, err
	}
	return ch, nil
}
