package embedded

import (
	"context"
	"sort"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// Seek implements channels.Log: a binary search over the channel's record
// index by ingest time. Every message of a record has the record's time,
// and record times never decrease along a channel (appends clamp them), so
// the first record with a time at or after t starts the answer. Only
// committed messages count, as for Read.
func (l *Log) Seek(ctx context.Context, channelID string, t time.Time) (channels.Cursor, error) {
	if l.isClosed.Load() {
		return channels.Cursor{}, channels.ErrClosed
	}
	c := l.lookup(channelID)
	if c == nil {
		return channels.Cursor{Offset: 1}, nil
	}
	c.mu.Lock()
	if l.barrier(ctx, c, 0) {
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if c.deleted || !c.hasEpoch {
		return channels.Cursor{Offset: 1}, nil
	}
	tn := channels.TimeNanos(t)
	visible := c.durable
	entries := c.entries[c.head:]
	i := sort.Search(len(entries), func(i int) bool { return entries[i].time >= tn })
	off := visible
	if i < len(entries) {
		off = min(max(entries[i].first, c.first()), visible)
	}
	return channels.Cursor{Epoch: epochString(c.epoch), Offset: off}, nil
}
