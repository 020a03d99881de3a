package redis

import (
	"context"
	"strconv"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// Seek implements channels.Log: a binary search over the channel's
// offsets, one XRANGE of a single entry per probe (about log2 of the
// retained messages round trips; entries already cached cost none).
//
// A message's time is the ingest time of the node that accepted it. Times
// do not decrease along a channel written by one node; a channel written
// by several nodes may see small steps back between their clocks, and the
// answer is then an offset where times cross t (exact for non-decreasing
// times).
func (l *Log) Seek(ctx context.Context, channelID string, t time.Time) (channels.Cursor, error) {
	if l.closed.Load() {
		return channels.Cursor{}, channels.ErrClosed
	}
	s := l.shardFor(channelID)
	s.barrier(ctx, channelID)
	m, err := s.meta(ctx, channelID, true)
	if err != nil {
		return channels.Cursor{}, err
	}
	if m.epoch == "" {
		return channels.Cursor{Offset: 1}, nil
	}
	tn := channels.TimeNanos(t)
	stream, _, _ := logKeys(channelID)
	lo, hi := effectiveFirst(m, l.retention(channelID)), m.next
	for lo < hi {
		mid := lo + (hi-lo)/2
		efirst, elast, d, ok := s.cache.find(channelID, m.epoch, mid)
		if !ok {
			entries, err := s.client.XRangeN(ctx, stream, strconv.FormatUint(mid, 10), "+", 1).Result()
			if err != nil {
				return channels.Cursor{}, unavailable("seek channel log", err)
			}
			if len(entries) == 0 {
				hi = mid // nothing at or after mid (deleted meanwhile)
				continue
			}
			e := entries[0]
			last, n, err := parseEntryID(e.ID)
			if err != nil {
				return channels.Cursor{}, channels.Errorf(channels.CodeInternal, "seek channel %s: entry %s: %w", channelID, e.ID, err)
			}
			s.cacheEntry(channelID, m.epoch, e)
			efirst, elast = last-n+1, last
			d, _ = e.Values["d"].(string)
		}
		if efirst > mid {
			lo = max(lo, efirst) // offsets before the entry were trimmed
		}
		start := max(efirst, lo)
		k, found := uint64(0), false
		err := decodeEntry(efirst, d, func(off uint64, mt int64, _ string) bool {
			if off >= start && mt >= tn {
				k, found = off, true
				return false
			}
			return true
		})
		if err != nil {
			return channels.Cursor{}, channels.Errorf(channels.CodeInternal, "seek channel %s: entry %d: %w", channelID, elast, err)
		}
		switch {
		case !found:
			lo = min(elast+1, hi)
		case k > start:
			lo, hi = k, k // the message before k is older than t
		default:
			hi = min(hi, k)
		}
	}
	return channels.Cursor{Epoch: m.epoch, Offset: lo}, nil
}
