package embedded

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// readRound bounds the records a Read takes from a channel's index under
// its lock at a time; their data is copied after the lock is released, so
// a reader on disk never holds up appends.
const readRound = 32

// Read copies records of channelID from the cursor. Offset 0 means the
// oldest retained message. A cursor of another epoch (from.Epoch set and
// different), or beyond the committed end of the log, sets Reset and reads
// from the oldest retained message. Only committed messages are returned.
func (l *Log) Read(ctx context.Context, channelID string, from channels.Cursor, limit, maxBytes int, dst *channels.Records) (channels.ReadResult, error) {
	dst.Reset()
	if l.isClosed.Load() {
		return channels.ReadResult{}, channels.ErrClosed
	}
	c := l.lookup(channelID)
	if c == nil {
		return readEmpty(from), nil
	}
	var round [readRound]entry
	c.mu.Lock()
	if l.barrier(ctx, c, from.Offset) {
		c.mu.Lock()
	}
	if c.deleted || !c.hasEpoch {
		c.mu.Unlock()
		return readEmpty(from), nil
	}
	epoch := epochString(c.epoch)
	res := channels.ReadResult{Epoch: epoch}
	first, visible := c.first(), c.durable
	off := from.Offset
	switch {
	case from.Epoch != "" && from.Epoch != epoch, off > visible:
		res.Reset = true
		off = min(first, visible)
	case off == 0:
		off = min(first, visible)
	case off < first:
		res.Missed = first - off
		res.MissedSince = time.Unix(0, c.missedSince(off))
		off = first
	}
	size := 0
	for {
		// Take the next records of the index under the lock.
		n := 0
		if off < visible {
			i := sort.Search(len(c.entries)-c.head, func(i int) bool {
				e := &c.entries[c.head+i]
				return e.first+uint64(e.count) > off
			}) + c.head
			est := size
			for ; i < len(c.entries) && n < len(round); i++ {
				e := c.entries[i]
				if e.first >= visible || limit > 0 && dst.Len()+n >= limit || maxBytes > 0 && n > 0 && est >= maxBytes {
					break
				}
				e.seg.refs.Add(1)
				round[n] = e
				n++
				est += int(e.dataLen)
			}
		}
		c.mu.Unlock()
		if n == 0 {
			break
		}
		stop := false
		for k := range n {
			e := &round[k]
			if !stop {
				if e.first > off {
					// A gap left by damaged records: report it as missed,
					// unless records were returned already.
					if dst.Len() > 0 {
						stop = true
					} else {
						res.Missed += e.first - off
						if res.MissedSince.IsZero() {
							res.MissedSince = time.Unix(0, e.time)
						}
						off = e.first
					}
				}
			}
			if !stop {
				var full bool
				off, size, full = l.readEntry(e, off, visible, limit, maxBytes, size, dst, &res)
				stop = full
			}
			e.seg.refs.Add(-1)
			round[k] = entry{}
		}
		if stop || ctx.Err() != nil {
			break
		}
		c.mu.Lock()
		if c.deleted || c.first() > off {
			c.mu.Unlock()
			break // trimmed meanwhile: the next Read reports it
		}
	}
	res.Next = channels.Cursor{Epoch: epoch, Offset: off}
	return res, nil
}

// barrier gives a reader its own writes: when the reader would otherwise
// get nothing (it asks from off, 0 for the start or the end of the
// channel) while messages it asks for are written but not yet committed,
// it waits for their commit (started at once). A reader that keeps up with
// a busy channel is given what is committed without waiting. c.mu is held;
// barrier reports whether it released it (the caller locks again).
func (l *Log) barrier(ctx context.Context, c *chanLog, off uint64) bool {
	if c.durable >= c.next || off != 0 && off < c.durable {
		return false
	}
	end := c.lastEnd
	c.mu.Unlock()
	l.waitSynced(ctx, end)
	return true
}

// readEntry adds the messages of e from off (below visible) to dst within
// the bounds, and returns the next offset, the bytes returned so far and
// whether a bound was reached.
func (l *Log) readEntry(e *entry, off, visible uint64, limit, maxBytes, size int, dst *channels.Records, res *channels.ReadResult) (uint64, int, bool) {
	full := false
	decode := func(rec []byte) bool {
		h, err := parseHeader(rec)
		if err != nil {
			return false
		}
		err = messages(rec, h, func(o uint64, data []byte) bool {
			if o < off {
				return true
			}
			if o >= visible || limit > 0 && dst.Len() >= limit || maxBytes > 0 && dst.Len() > 0 && size+len(data) > maxBytes {
				full = o < visible
				return false
			}
			dst.Add(o, h.time, data)
			size += len(data)
			off = o + 1
			return true
		})
		return err == nil
	}
	ok := false
	if !l.cache.read(e.pos, int(e.size), func(rec []byte) { ok = decode(rec) }) {
		l.metrics.diskReads.Inc()
		bp := readBufs.Get().(*[]byte)
		if cap(*bp) < int(e.size) {
			*bp = make([]byte, e.size)
		}
		rec := (*bp)[:e.size]
		if _, err := e.seg.f.ReadAt(rec, e.pos-e.seg.base); err == nil && checkCRC(rec) {
			ok = decode(rec)
		}
		readBufs.Put(bp)
	}
	if !ok {
		// The record is damaged on disk: its messages are missed.
		l.metrics.corrupt.WithLabelValues("read").Inc()
		end := e.first + uint64(e.count)
		if dst.Len() > 0 {
			return off, size, true
		}
		if end > off {
			res.Missed += end - off
			if res.MissedSince.IsZero() {
				res.MissedSince = time.Unix(0, e.time)
			}
			off = end
		}
	}
	return off, size, full
}

var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// readEmpty answers a Read of a channel without a log.
func readEmpty(from channels.Cursor) channels.ReadResult {
	return channels.ReadResult{
		Next:  channels.Cursor{Offset: 1},
		Reset: from.Epoch != "" || from.Offset > 1,
	}
}

// missedSince returns the best known ingest time of the trimmed message at
// offset off (c.mu held).
func (c *chanLog) missedSince(off uint64) int64 {
	n := min(c.nmarks, len(c.marks))
	var best, oldest *evictMark
	for i := range n {
		m := &c.marks[i]
		if m.offset <= off && (best == nil || m.offset > best.offset) {
			best = m
		}
		if oldest == nil || m.offset < oldest.offset {
			oldest = m
		}
	}
	switch {
	case best != nil:
		return best.time
	case oldest != nil:
		return oldest.time
	case c.head < len(c.entries):
		return c.entries[c.head].time
	}
	return c.lastTime
}

// Wait blocks until channelID has a committed message with offset >=
// from.Offset, its epoch is not from.Epoch (at once when it is not at the
// call) or changed during the wait (it was deleted, or created), the log
// was closed (ErrClosed) or ctx is done. While a reader waits for messages
// that are written but not yet committed, the commit starts at once.
func (l *Log) Wait(ctx context.Context, channelID string, from channels.Cursor) error {
	next := max(from.Offset, 1)
	want, wantOK := parseEpoch(from.Epoch)
	for {
		if l.isClosed.Load() {
			return channels.ErrClosed
		}
		c := l.lookup(channelID)
		if c == nil {
			if from.Epoch != "" {
				return nil // the history of from is gone
			}
			if c = l.create(channelID); c == nil {
				return channels.ErrClosed
			}
		}
		c.mu.Lock()
		if c.deleted {
			c.mu.Unlock()
			continue
		}
		if from.Epoch != "" && (!wantOK || !c.hasEpoch || c.epoch != want) {
			c.mu.Unlock()
			return nil // another history than the one from was read in
		}
		if c.durable > next {
			c.mu.Unlock()
			return nil
		}
		pending := c.next > next
		epoch, hasEpoch := c.epoch, c.hasEpoch
		if c.notify == nil {
			c.notify = make(chan struct{})
		}
		notify := c.notify
		c.waiters++
		c.mu.Unlock()
		if pending {
			l.requestCommit()
		}

		var err error
		select {
		case <-notify:
		case <-ctx.Done():
			err = ctx.Err()
		}

		c.mu.Lock()
		c.waiters--
		woke := c.deleted || c.epoch != epoch || c.hasEpoch != hasEpoch || c.durable > next
		unused := !c.deleted && !c.hasEpoch && !c.custom && c.waiters == 0
		c.mu.Unlock()
		if unused {
			l.dropUnused(channelID, c)
		}
		switch {
		case l.isClosed.Load():
			return channels.ErrClosed
		case woke:
			return nil
		case err != nil:
			return err
		}
	}
}

// dropUnused removes c, created by a waiter, if it is still unused.
func (l *Log) dropUnused(ch string, c *chanLog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.logs[ch] == c && !c.hasEpoch && !c.custom && c.waiters == 0 && len(c.entries) == 0 {
		delete(l.logs, ch)
		c.deleted = true
	}
}

// Info describes channelID's committed log.
func (l *Log) Info(ctx context.Context, channelID string) (channels.LogInfo, error) {
	if l.isClosed.Load() {
		return channels.LogInfo{}, channels.ErrClosed
	}
	c := l.lookup(channelID)
	if c == nil {
		return channels.LogInfo{First: 1, Next: 1}, nil
	}
	c.mu.Lock()
	if l.barrier(ctx, c, 0) {
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if c.deleted || !c.hasEpoch {
		return channels.LogInfo{First: 1, Next: 1}, nil
	}
	return channels.LogInfo{Epoch: epochString(c.epoch), First: min(c.first(), c.durable), Next: c.durable, Bytes: c.bytes}, nil
}

// SetRetention sets channelID's retention (zero: the default) and applies
// it at once. It is kept in the channel checkpoint, so it holds after a
// restart before anyone sets it again.
func (l *Log) SetRetention(channelID string, r channels.Retention) {
	if r == (channels.Retention{}) && l.lookup(channelID) == nil {
		return // the default already applies
	}
	c := l.create(channelID)
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	custom := r != channels.Retention{}
	if c.custom != custom || c.ret != r {
		l.ckptReq.Store(true)
	}
	c.ret, c.custom = r, custom
	l.trim(c, l.retention(c))
}

// Delete drops channelID's log: a tombstone is written (and committed
// before Delete returns), waiters return, and the next append starts a new
// epoch.
func (l *Log) Delete(ctx context.Context, channelID string) error {
	l.wmu.Lock()
	if l.closed {
		l.wmu.Unlock()
		return channels.ErrClosed
	}
	l.mu.Lock()
	c := l.logs[channelID]
	delete(l.logs, channelID)
	l.mu.Unlock()
	if c == nil {
		l.wmu.Unlock()
		return nil
	}
	c.mu.Lock()
	had := c.hasEpoch
	c.deleted = true
	l.clearIndex(c)
	if c.notify != nil {
		close(c.notify)
		c.notify = nil
	}
	c.mu.Unlock()
	if !had {
		l.wmu.Unlock()
		return nil
	}
	rec := deleteRecord(channelID)
	copy(l.cache.reserve(l.end, len(rec), l.written), rec)
	l.end += int64(len(rec))
	err := l.flush()
	end := l.end
	l.wmu.Unlock()
	if err != nil {
		return err
	}
	l.requestCommit()
	if l.cfg.Sync == SyncNone {
		return nil
	}
	return l.waitSynced(ctx, end)
}

// Close commits what was appended, wakes every waiter (they return
// ErrClosed), writes the channel checkpoint and closes the files. Appends
// in progress finish first; later calls return ErrClosed.
func (l *Log) Close() error {
	l.wmu.Lock()
	if l.closed {
		l.wmu.Unlock()
		return nil
	}
	l.closed = true
	l.wmu.Unlock()
	close(l.stop) // the committer commits once more and returns
	l.wg.Wait()
	l.isClosed.Store(true)
	if l.cfg.Sync == SyncNone {
		// A clean shutdown loses nothing under any policy.
		l.segMu.RLock()
		for _, s := range l.segs {
			s.f.Sync()
		}
		l.segMu.RUnlock()
	}
	l.syncMu.Lock()
	l.syncErr = channels.ErrClosed
	close(l.syncedCh)
	l.syncedCh = make(chan struct{})
	l.syncMu.Unlock()
	for _, c := range l.list(nil) {
		c.mu.Lock()
		if c.notify != nil {
			close(c.notify)
			c.notify = nil
		}
		c.mu.Unlock()
	}
	_, err := l.writeCheckpoint()
	l.closeFiles()
	l.cache.close()
	return err
}

// LogStats is a point-in-time summary of a Log.
type LogStats struct {
	Channels   int    // channel logs held (including empty ones)
	Messages   int64  // retained messages
	Bytes      int64  // retained message bytes
	Segments   int    // segment files
	DiskBytes  int64  // bytes in the segment files
	CacheBytes int64  // memory holding the newest part of the log
	Evicted    uint64 // messages dropped by retention or the disk bound since start
}

// Stats summarises l.
func (l *Log) Stats() LogStats {
	l.mu.RLock()
	st := LogStats{Channels: len(l.logs)}
	for _, c := range l.logs {
		c.mu.Lock()
		if c.head < len(c.entries) {
			st.Messages += int64(c.next - c.first())
		}
		st.Bytes += c.bytes
		c.mu.Unlock()
	}
	l.mu.RUnlock()
	l.segMu.RLock()
	st.Segments = len(l.segs)
	for _, s := range l.segs {
		st.DiskBytes += s.size.Load()
	}
	l.segMu.RUnlock()
	st.CacheBytes = l.cache.bytes()
	st.Evicted = l.evicted.Load()
	return st
}

func (l *Log) updateGauges() {
	l.segMu.RLock()
	var disk int64
	for _, s := range l.segs {
		disk += s.size.Load()
	}
	n := len(l.segs)
	l.segMu.RUnlock()
	l.metrics.diskBytes.Set(float64(disk))
	l.metrics.segments.Set(float64(n))
	l.metrics.cacheBytes.Set(float64(l.cache.bytes()))
}
