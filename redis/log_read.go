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

// read implements Log.Read for a channel of this shard.
func (s *shard) read(ctx context.Context, channelID string, from channels.Cursor, limit, maxBytes int, dst *channels.Records, ret channels.Retention) (channels.ReadResult, error) {
	stream, _, metaKey := logKeys(channelID)
	guess := max(from.Offset, 1)
	const firstCount = 4
	var metaCmd *goredis.SliceCmd
	var rangeCmd *goredis.XMessageSliceCmd
	_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		metaCmd = p.HMGet(ctx, metaKey, metaFields...)
		rangeCmd = p.XRangeN(ctx, stream, strconv.FormatUint(guess, 10), "+", firstCount)
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
	entries := rangeCmd.Val()
	if guess > start {
		entries = nil // read from the wrong place
	}
	next := start
	count := int64(firstCount)
	fetched := guess <= start
	for {
		if !fetched {
			var err error
			entries, err = s.client.XRangeN(ctx, stream, strconv.FormatUint(next, 10), "+", count).Result()
			if err != nil {
				return channels.ReadResult{}, unavailable("read channel log", err)
			}
		}
		fetched = false
		full := false
		var lastID string
		for _, e := range entries {
			lastID = e.ID
			last, n, err := parseEntryID(e.ID)
			if err != nil || last < next {
				continue
			}
			d, _ := e.Values["d"].(string)
			nx, f, err := addRecords(dst, last-n+1, next, d, limit, maxBytes)
			if err != nil {
				return channels.ReadResult{}, channels.Errorf(channels.CodeInternal, "read channel %s: entry %s: %v", channelID, e.ID, err)
			}
			if nx == next && !f && last >= next {
				// Offsets below next only, or an empty entry: skip it.
				next = last + 1
			} else {
				next = nx
			}
			if f {
				full = true
				break
			}
		}
		if full || int64(len(entries)) < count || lastID == "" {
			break
		}
		if res.MissedSince.IsZero() && res.Missed > 0 && dst.Len() > 0 {
			res.MissedSince = time.Unix(0, dst.At(0).Time)
		}
		count = min(count*4, 256)
	}
	if res.Missed > 0 && res.MissedSince.IsZero() && dst.Len() > 0 {
		res.MissedSince = time.Unix(0, dst.At(0).Time)
	}
	res.Next = channels.Cursor{Epoch: m.epoch, Offset: next}
	return res, nil
}
