package registry

import "github.com/plexus-router/plexus/channels"

// Rate limiters: one per channel id that has a record or tokens, put in
// every route of the channel. They outlive Replace (a resync), so bucket
// state and drop counts not yet reported survive it.

// limiter returns the limiter of a channel id, made on first use. Caller
// holds r.mu for writing (or owns r exclusively).
func (r *Registry) limiter(channelID string) *channels.Limiter {
	l := r.limiters[channelID]
	if l == nil {
		l = channels.NewLimiter(channelID)
		if c, ok := r.channels[channelID]; ok {
			l.Set(c.RateLimit)
		}
		r.limiters[channelID] = l
	}
	return l
}

// dropLimiter forgets a deleted channel's limiter; it is marked deleted so
// that no notice is written into the deleted channel. Caller holds r.mu.
func (r *Registry) dropLimiter(channelID string) {
	if l := r.limiters[channelID]; l != nil {
		l.SetDeleted(true)
		delete(r.limiters, channelID)
	}
}

// resetLimits makes limiters agree with the records after Replace: a
// channel without a record has no limit of its own; one with neither a
// record nor tokens is forgotten. Caller holds r.mu.
func (r *Registry) resetLimits() {
	for id, l := range r.limiters {
		if c, ok := r.channels[id]; ok {
			l.Set(c.RateLimit)
			continue
		}
		l.Set(nil)
		if len(r.chanTokens[id]) == 0 {
			r.dropLimiter(id)
		}
	}
}

// Limiter returns the rate limiter of a channel id (made if needed): the
// one its routes carry.
func (r *Registry) Limiter(channelID string) *channels.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.limiter(channelID)
}
