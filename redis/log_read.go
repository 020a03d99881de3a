package redis

import (
	"context"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/plexus-router/plexus/channels"
)

// meta reads a channel's log meta (the zero logMeta when it has no log).
func (s *shard) meta(ctx context.Context, channelID string, _ bool) (logMeta, error) {
	_, _, key := logKeys(channelID)
	vals, err := s.client.HMGet(ctx, key, metaFields...).Result()
	if err != nil {
		return logMeta{}, unavailable("read channel log", err)
	}
	return parseMeta(vals), nil
}

// read implements Log.Read for a channel of this shard. The meta and the
// entries come from one MULTI unless the entry wanted is cached; further
// entries are fetched (with the epoch, to notice a reset) as needed, one
// at first, then more per round trip.
func (s *shard) read(ctx context.Context, channelID string, from channels.Cursor, limit, maxBytes int, dst *channels.Records, ret channels.Retention) (channels.ReadResult, error) {
	stream, _, metaKey := logKeys(channelID)
	guess := max(from.Offset, 1)
	_, _, _, cached := s.cache.find(channelID, from.Epoch, guess)
	var metaCmd *goredis.SliceCmd
	var rangeCmd *goredis.XMessageSliceCmd
	_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		metaCmd = p.HMGet(ctx, metaKey, metaFields...)
		if !cached {
			rangeCmd = p.XRangeN(ctx, stream, strconv.FormatUint(guess, 10), "+", 1)
		}
		return nil
	})
	if err != nil {
		return channels.ReadResult{}, unavailable("read channel log", err)
	}
	m := parseMeta(metaCmd.Val())
	if m.epoch == "" {
		return channels.ReadResult{
			Next:  channels.Cursor{Offset: 1},
			Reset: from.Epoch != "" || from.Offset > 1,
		}, nil
	}
	first := effectiveFirst(m, ret)
	res := channels.ReadResult{Epoch: m.epoch}
	start := from.Offset
	switch {
	case from.Epoch != "" && from.Epoch != m.epoch, start > m.next:
		res.Reset = true
		start = first
	case start == 0:
		start = first
	case start < first:
		res.Missed = first - start
		if m.et != 0 {
			res.MissedSince = time.Unix(0, m.et)
		}
		start = first
	}
	if rangeCmd != nil {
		for _, e := range rangeCmd.Val() {
			s.cacheEntry(channelID, m.epoch, e)
		}
	}

	next := start
	count := int64(1)
	for next < m.next {
		if efirst, elast, d, ok := s.cache.find(channelID, m.epoch, next); ok {
			nx, full, err := addRecords(dst, efirst, next, d, limit, maxBytes)
			if err != nil {
				return channels.ReadResult{}, channels.Errorf(channels.CodeInternal, "read channel %s: entry %d: %w", channelID, elast, err)
			}
			if nx == next && !full {
				nx = elast + 1 // nothing at or after next in it
			}
			next = nx
			if full {
				break
			}
			continue
		}
		var epochCmd *goredis.StringCmd
		var xr *goredis.XMessageSliceCmd
		_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			epochCmd = p.HGet(ctx, metaKey, "epoch")
			xr = p.XRangeN(ctx, stream, strconv.FormatUint(next, 10), "+", count)
			return nil
		})
		if err != nil && epochCmd.Err() != goredis.Nil {
			return channels.ReadResult{}, unavailable("read channel log", err)
		}
		if epochCmd.Val() != m.epoch {
			break // the log restarted while we read: return what we have
		}
		entries := xr.Val()
		found := false
		for _, e := range entries {
			if s.cacheEntry(channelID, m.epoch, e) {
				found = true
			}
		}
		if !found || len(entries) == 0 {
			break
		}
		if _, _, _, ok := s.cache.find(channelID, m.epoch, next); !ok {
			// Not cacheable (too big) or trimmed meanwhile: use directly.
			full := false
			for _, e := range entries {
				last, n, err := parseEntryID(e.ID)
				if err != nil || last < next {
					continue
				}
				d, _ := e.Values["d"].(string)
				nx, f, err := addRecords(dst, last-n+1, next, d, limit, maxBytes)
				if err != nil {
					return channels.ReadResult{}, channels.Errorf(channels.CodeInternal, "read channel %s: entry %s: %w", channelID, e.ID, err)
				}
				if nx == next && !f {
					nx = last + 1
				}
				next = nx
				if f {
					full = true
					break
				}
			}
			if full || int64(len(entries)) < count {
				break
			}
		}
		count = min(count*4, 64)
	}
	if res.Missed > 0 && res.MissedSince.IsZero() && dst.Len() > 0 {
		res.MissedSince = time.Unix(0, dst.At(0).Time)
	}
	res.Next = channels.Cursor{Epoch: m.epoch, Offset: next}
	return res, nil
}

// cacheEntry caches a fetched entry; false if it is malformed.
func (s *shard) cacheEntry(channelID, epoch string, e goredis.XMessage) bool {
	last, n, err := parseEntryID(e.ID)
	if err != nil {
		return false
	}
	d, _ := e.Values["d"].(string)
	s.cache.add(channelID, epoch, last-n+1, last, d)
	return true
}
