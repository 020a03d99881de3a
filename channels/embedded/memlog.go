package embedded

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// LogConfig configures the embedded channel log.
type LogConfig struct {
	// Default is the retention of every channel without its own
	// (SetRetention). The zero value means channels.DefaultRetention.
	Default channels.Retention
	// Dir is where Close (and Snapshot) write the logs and where OpenLog
	// restores them from. Empty: no persistence.
	Dir string
	// Now returns the current time (nil: time.Now). Tests set it to drive
	// age retention.
	Now func() time.Time
}

// LogStats is a point-in-time summary of a Log.
type LogStats struct {
	Channels     int    // channel logs held (including empty ones)
	Messages     int64  // retained messages
	Bytes        int64  // retained message bytes
	Segments     int    // live segments
	SegmentBytes int64  // capacity of the live segments' data arenas
	PoolBytes    int64  // capacity of the segments kept for reuse
	Evicted      uint64 // messages dropped by retention since start
}

// Log is the embedded implementation of Log: every channel's log is a
// list of segments in process memory.
//
// A segment is one data arena (a size class from 16 KiB to 1 MiB, chosen by
// how fast the channel fills) with the end position and ingest time of each
// message. Append copies messages into the newest segment and takes a
// recycled segment from a free list when it is full, so steady-state ingest
// allocates nothing. Retention is applied per message at the head of the
// log on every append, and by a periodic sweep for age; a segment returns to
// the free list when its last message leaves retention.
//
// Persistence (Dir set): Close writes a snapshot of every log, and
// OpenLog restores it and removes the file. Logs survive a clean
// shutdown; after a crash the logs since the last start are lost (the
// channel configuration is persisted separately by the store), and the
// channels start new epochs, so readers are told (ReadResult.Reset).
// A snapshot written by Snapshot (not by Close) restores with new epochs
// too, because offsets may have been handed out after it was written.
type Log struct {
	def  channels.Retention
	dir  string
	now  func() time.Time
	pool segPool

	mu     sync.RWMutex // guards logs and closed; held (read) through Append
	logs   map[string]*chanLog
	closed bool

	isClosed   atomic.Bool
	evicted    atomic.Uint64
	restoreErr error
	snapMu     sync.Mutex

	stop chan struct{}
	done chan struct{}
}

var _ channels.Log = (*Log)(nil)

// sweepInterval is how often the age sweep runs.
const sweepInterval = 250 * time.Millisecond

// OpenLog returns a Log, restoring the snapshot in cfg.Dir if there
// is one. A snapshot that cannot be read does not fail OpenLog: the log
// starts empty and RestoreErr reports why. The returned error is for
// failures to use Dir at all.
func OpenLog(cfg LogConfig) (*Log, error) {
	l := &Log{
		def:  cfg.Default,
		dir:  cfg.Dir,
		now:  cfg.Now,
		logs: make(map[string]*chanLog),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if l.def == (channels.Retention{}) {
		l.def = channels.DefaultRetention
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.dir != "" {
		if err := l.restore(); err != nil {
			return nil, err
		}
	}
	go l.sweeper()
	return l, nil
}

// RestoreErr reports why the snapshot found by OpenLog could not be
// restored (nil if there was none or it was restored). The unreadable file
// is moved aside (suffix ".corrupt") for inspection.
func (l *Log) RestoreErr() error { return l.restoreErr }

// chanLog is one channel's log. Its fields are guarded by mu.
type chanLog struct {
	mu      sync.Mutex
	epoch   string // "" until the first append
	first   uint64 // offset of the oldest retained message
	next    uint64 // offset of the next message
	bytes   int64  // retained message bytes
	segs    []*segment
	class   int // size class of the next segment
	ret     channels.Retention
	custom  bool          // ret was set by SetRetention
	notify  chan struct{} // closed on append; created by the first waiter
	waiters int
	deleted bool // dropped from the map: look the channel up again

	// marks remembers where evicted segments started and when, to answer
	// ReadResult.MissedSince: a ring of the newest len(marks).
	marks  [16]evictMark
	nmarks int // marks written in total
}

type evictMark struct {
	offset uint64
	time   int64
}

func newChanLog() *chanLog { return &chanLog{first: 1, next: 1} }

// retention returns the effective retention of c.
func (l *Log) retention(c *chanLog) channels.Retention {
	if c.custom {
		return c.ret
	}
	return l.def
}

// lookup returns the log of ch or nil.
func (l *Log) lookup(ch string) *chanLog {
	l.mu.RLock()
	c := l.logs[ch]
	l.mu.RUnlock()
	return c
}

// create returns the log of ch, creating it if needed; nil after Close.
func (l *Log) create(ch string) *chanLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	c := l.logs[ch]
	if c == nil {
		c = newChanLog()
		l.logs[ch] = c
	}
	return c
}

// Append adds every batch. The embedded log always admits: it returns an
// error only after Close (ErrClosed).
func (l *Log) AppendDurable(ctx context.Context, batches []*channels.Batch) error {
	return l.Append(ctx, batches)
}

// Append adds the batches to the channels' logs.
func (l *Log) Append(ctx context.Context, batches []*channels.Batch) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return channels.ErrClosed
	}
	for _, b := range batches {
		if b.Len() == 0 {
			continue
		}
		for {
			c := l.logs[b.ChannelID]
			if c == nil {
				// Creating needs the write lock; Close cannot run in
				// between because it waits for it too, but check anyway.
				l.mu.RUnlock()
				c = l.create(b.ChannelID)
				l.mu.RLock()
				if c == nil || l.closed {
					return channels.ErrClosed
				}
			}
			if l.appendBatch(c, b) {
				break
			}
		}
	}
	return nil
}

// appendBatch appends b to c; false if c was deleted meanwhile.
func (l *Log) appendBatch(c *chanLog, b *channels.Batch) bool {
	t := b.Time
	if t == 0 {
		t = l.now().UnixNano()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted {
		return false
	}
	if c.epoch == "" {
		c.epoch = newEpoch()
	}
	ret := l.retention(c)
	for i := range b.Len() {
		l.put(c, ret, b.Message(i), t)
	}
	l.evict(c, ret)
	if c.notify != nil {
		close(c.notify)
		c.notify = nil
	}
	return true
}

// put appends one message to c.
func (l *Log) put(c *chanLog, ret channels.Retention, msg []byte, t int64) {
	var s *segment
	if n := len(c.segs); n > 0 {
		s = c.segs[n-1]
	}
	if s == nil || !s.fits(len(msg)) {
		s = l.newSegment(c, s, ret, len(msg), t)
		c.segs = append(c.segs, s)
	}
	s.data = append(s.data, msg...)
	s.ends = append(s.ends, int32(len(s.data)))
	s.times = append(s.times, t)
	c.next++
	c.bytes += int64(len(msg))
}

// newSegment returns an empty segment for the next message (of size n) of
// c, after prev (nil if c has none). The size class grows when prev filled
// within a second and shrinks when it took over a minute, within what the
// retention makes useful (a segment is at most about a quarter of the
// Bytes bound, half of the Count bound).
func (l *Log) newSegment(c *chanLog, prev *segment, ret channels.Retention, n int, t int64) *segment {
	if prev != nil && len(prev.ends) > 0 {
		switch age := time.Duration(t - prev.born); {
		case age < time.Second && c.class < numClasses-1:
			c.class++
		case age > time.Minute && c.class > 0:
			c.class--
		}
		limit := int64(-1)
		if ret.Bytes > 0 {
			limit = ret.Bytes / 4
		}
		if ret.Count > 0 {
			avg := int64(len(prev.data) / len(prev.ends))
			if est := int64(ret.Count) * avg / 2; limit < 0 || est < limit {
				limit = est
			}
		}
		for c.class > 0 && limit >= 0 && int64(classSize(c.class)) > limit {
			c.class--
		}
	}
	class := c.class
	for class < numClasses && classSize(class) < n {
		class++
	}
	var s *segment
	if class < numClasses {
		s = l.pool.get(class)
	} else {
		s = &segment{class: -1, data: make([]byte, 0, n), ends: make([]int32, 0, 1), times: make([]int64, 0, 1)}
	}
	s.base = c.next
	s.born = t
	return s
}

// evict drops messages from the head of c while they are outside ret.
func (l *Log) evict(c *chanLog, ret channels.Retention) {
	var cutoff int64
	if ret.Age > 0 {
		cutoff = l.now().Add(-ret.Age).UnixNano()
	}
	var n uint64
	for len(c.segs) > 0 {
		count := c.next - c.first
		s := c.segs[0]
		over := ret.Count > 0 && count > uint64(ret.Count) ||
			ret.Bytes > 0 && c.bytes > ret.Bytes ||
			ret.Age > 0 && count > uint64(ret.Keep) && s.times[s.head] < cutoff
		if !over {
			break
		}
		if s.head == 0 {
			c.marks[c.nmarks%len(c.marks)] = evictMark{offset: s.base, time: s.times[0]}
			c.nmarks++
		}
		c.bytes -= int64(s.size(s.head))
		s.head++
		c.first++
		n++
		if s.head == len(s.ends) {
			// Shift rather than reslice so the slice keeps its capacity.
			copy(c.segs, c.segs[1:])
			c.segs[len(c.segs)-1] = nil
			c.segs = c.segs[:len(c.segs)-1]
			l.pool.put(s)
		}
	}
	if n > 0 {
		l.evicted.Add(n)
	}
}

// missedSince returns the best known ingest time of the evicted message at
// offset off: its own if its segment is still in use, else the time of the
// first message of the newest remembered evicted segment that started at
// or before off, else of the oldest remembered one, else of the oldest
// retained message.
func (c *chanLog) missedSince(off uint64) int64 {
	if len(c.segs) > 0 && off >= c.segs[0].base {
		return c.segs[0].times[off-c.segs[0].base]
	}
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
	case len(c.segs) > 0:
		s := c.segs[0]
		return s.times[s.head]
	}
	return 0
}

// Read copies records of channelID from the cursor. Offset 0 means the
// oldest retained message. A cursor of another epoch (from.Epoch set and
// different), or beyond the end of the log, sets Reset and reads from the
// oldest retained message.
func (l *Log) Read(ctx context.Context, channelID string, from channels.Cursor, limit, maxBytes int, dst *channels.Records) (channels.ReadResult, error) {
	dst.Reset()
	if l.isClosed.Load() {
		return channels.ReadResult{}, channels.ErrClosed
	}
	c := l.lookup(channelID)
	if c == nil {
		return readEmpty(from), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted {
		return readEmpty(from), nil
	}
	res := channels.ReadResult{Epoch: c.epoch}
	off := from.Offset
	switch {
	case from.Epoch != "" && from.Epoch != c.epoch, off > c.next:
		res.Reset = true
		off = c.first
	case off == 0:
		off = c.first
	case off < c.first:
		res.Missed = c.first - off
		res.MissedSince = time.Unix(0, c.missedSince(off))
		off = c.first
	}
	i := sort.Search(len(c.segs), func(i int) bool { return c.segs[i].base > off }) - 1
	size := 0
	for ; i >= 0 && i < len(c.segs); i++ {
		s := c.segs[i]
		for j := int(off - s.base); j < len(s.ends); j++ {
			if limit > 0 && dst.Len() >= limit {
				goto done
			}
			start, end := s.bounds(j)
			if maxBytes > 0 && dst.Len() > 0 && size+end-start > maxBytes {
				goto done
			}
			dst.Add(off, s.times[j], s.data[start:end])
			size += end - start
			off++
		}
	}
done:
	res.Next = channels.Cursor{Epoch: c.epoch, Offset: off}
	return res, nil
}

// readEmpty answers a Read of a channel without a log.
func readEmpty(from channels.Cursor) channels.ReadResult {
	return channels.ReadResult{
		Next:  channels.Cursor{Offset: 1},
		Reset: from.Epoch != "" || from.Offset > 1,
	}
}

// Wait blocks until channelID has a message with offset >= next, its epoch
// changed (it was deleted, or created), the log was closed (ErrClosed) or
// ctx is done.
func (l *Log) Wait(ctx context.Context, channelID string, next uint64) error {
	next = max(next, 1)
	for {
		if l.isClosed.Load() {
			return channels.ErrClosed
		}
		c := l.lookup(channelID)
		if c == nil {
			if c = l.create(channelID); c == nil {
				return channels.ErrClosed
			}
		}
		c.mu.Lock()
		if c.deleted {
			c.mu.Unlock()
			continue
		}
		if c.next > next {
			c.mu.Unlock()
			return nil
		}
		epoch := c.epoch
		if c.notify == nil {
			c.notify = make(chan struct{})
		}
		notify := c.notify
		c.waiters++
		c.mu.Unlock()

		var err error
		select {
		case <-notify:
		case <-ctx.Done():
			err = ctx.Err()
		}

		c.mu.Lock()
		c.waiters--
		woke := c.deleted || c.epoch != epoch || c.next > next
		unused := !c.deleted && c.epoch == "" && !c.custom && c.waiters == 0
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
	if l.logs[ch] == c && c.epoch == "" && !c.custom && c.waiters == 0 {
		delete(l.logs, ch)
		c.deleted = true
	}
}

// Info describes channelID's log.
func (l *Log) Info(ctx context.Context, channelID string) (channels.LogInfo, error) {
	if l.isClosed.Load() {
		return channels.LogInfo{}, channels.ErrClosed
	}
	c := l.lookup(channelID)
	if c == nil {
		return channels.LogInfo{First: 1, Next: 1}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted {
		return channels.LogInfo{First: 1, Next: 1}, nil
	}
	return channels.LogInfo{Epoch: c.epoch, First: c.first, Next: c.next, Bytes: c.bytes}, nil
}

// SetRetention sets channelID's retention (zero: the default) and applies
// it at once.
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
	c.ret, c.custom = r, r != channels.Retention{}
	l.evict(c, l.retention(c))
}

// Delete drops channelID's log. Waiters return; the next append starts a
// new epoch.
func (l *Log) Delete(ctx context.Context, channelID string) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return channels.ErrClosed
	}
	c := l.logs[channelID]
	delete(l.logs, channelID)
	l.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		l.drop(c)
		c.mu.Unlock()
	}
	return nil
}

// drop releases c's segments and wakes its waiters; c.mu is held.
func (l *Log) drop(c *chanLog) {
	c.deleted = true
	for _, s := range c.segs {
		l.pool.put(s)
	}
	c.segs = nil
	c.bytes = 0
	if c.notify != nil {
		close(c.notify)
		c.notify = nil
	}
}

// Close stops the sweep, wakes every waiter (they return ErrClosed) and,
// with a Dir, writes the snapshot that the next OpenLog restores.
// Appends in progress finish first; later calls return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.isClosed.Store(true)
	logs := make([]*chanLog, 0, len(l.logs))
	for _, c := range l.logs {
		logs = append(logs, c)
	}
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	for _, c := range logs {
		c.mu.Lock()
		if c.notify != nil {
			close(c.notify)
			c.notify = nil
		}
		c.mu.Unlock()
	}
	if l.dir == "" {
		return nil
	}
	return l.snapshot(true)
}

// sweeper applies age retention to channels that receive no appends.
func (l *Log) sweeper() {
	defer close(l.done)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	var logs []*chanLog
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		logs = l.sweep(logs)
	}
}

// sweep applies age retention to every channel log once. It lists the logs
// into buf (reused between calls, returned emptied).
func (l *Log) sweep(buf []*chanLog) []*chanLog {
	buf = l.list(buf[:0])
	for i, c := range buf {
		c.mu.Lock()
		if ret := l.retention(c); ret.Age > 0 && !c.deleted {
			l.evict(c, ret)
		}
		c.mu.Unlock()
		buf[i] = nil
	}
	return buf[:0]
}

// list appends every channel log to dst.
func (l *Log) list(dst []*chanLog) []*chanLog {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, c := range l.logs {
		dst = append(dst, c)
	}
	return dst
}

// Stats summarises l.
func (l *Log) Stats() LogStats {
	l.mu.RLock()
	st := LogStats{Channels: len(l.logs)}
	for _, c := range l.logs {
		c.mu.Lock()
		st.Messages += int64(c.next - c.first)
		st.Bytes += c.bytes
		st.Segments += len(c.segs)
		for _, s := range c.segs {
			st.SegmentBytes += int64(cap(s.data))
		}
		c.mu.Unlock()
	}
	l.mu.RUnlock()
	st.PoolBytes = l.pool.bytes()
	st.Evicted = l.evicted.Load()
	return st
}

// newEpoch returns a fresh epoch: 16 random hex characters.
func newEpoch() string { return channels.RandomHex(8) }

// Segments.

const (
	minSegment = 16 << 10
	numClasses = 7 // 16 KiB .. 1 MiB
	// poolClassBytes bounds the free list of each size class.
	poolClassBytes = 8 << 20
)

func classSize(class int) int { return minSegment << class }

// segment holds consecutive messages of one channel from offset base.
type segment struct {
	base  uint64
	head  int    // index of the oldest retained message
	born  int64  // ingest time of the first message
	class int    // size class; -1: sized for one oversize message
	data  []byte // the messages, back to back; cap is the arena size
	ends  []int32
	times []int64
}

// fits reports whether a message of n bytes fits in s. The number of
// messages is bounded too so tiny messages cannot grow the index without
// bound.
func (s *segment) fits(n int) bool {
	if s.class < 0 {
		return false
	}
	return len(s.data)+n <= cap(s.data) && len(s.ends) < cap(s.data)/16
}

func (s *segment) bounds(i int) (start, end int) {
	if i > 0 {
		start = int(s.ends[i-1])
	}
	return start, int(s.ends[i])
}

func (s *segment) size(i int) int {
	start, end := s.bounds(i)
	return end - start
}

// segPool keeps emptied segments for reuse, per size class.
type segPool struct {
	mu   sync.Mutex
	free [numClasses][]*segment
}

func (p *segPool) get(class int) *segment {
	p.mu.Lock()
	if n := len(p.free[class]); n > 0 {
		s := p.free[class][n-1]
		p.free[class][n-1] = nil
		p.free[class] = p.free[class][:n-1]
		p.mu.Unlock()
		return s
	}
	p.mu.Unlock()
	size := classSize(class)
	return &segment{
		class: class,
		data:  make([]byte, 0, size),
		ends:  make([]int32, 0, size/256),
		times: make([]int64, 0, size/256),
	}
}

func (p *segPool) put(s *segment) {
	if s.class < 0 {
		return
	}
	s.data, s.ends, s.times = s.data[:0], s.ends[:0], s.times[:0]
	s.head, s.base, s.born = 0, 0, 0
	p.mu.Lock()
	if len(p.free[s.class])*classSize(s.class) < poolClassBytes {
		p.free[s.class] = append(p.free[s.class], s)
	}
	p.mu.Unlock()
}

func (p *segPool) bytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for class, free := range p.free {
		n += int64(len(free) * classSize(class))
	}
	return n
}
