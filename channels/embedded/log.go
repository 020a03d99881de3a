package embedded

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
)

// SyncPolicy says when appended messages are forced to disk.
type SyncPolicy int

const (
	// SyncInterval group-commits at least every SyncInterval, and at once
	// when someone waits: an AppendDurable caller (HTTP input) or a reader
	// following the channel. The default.
	SyncInterval SyncPolicy = iota
	// SyncAlways makes every Append wait for the group commit that covers
	// it (TCP and UDP input included).
	SyncAlways
	// SyncNone never forces data to disk: appends are written to the
	// operating system, which survives a killed process but not a power
	// loss.
	SyncNone
)

// ParseSyncPolicy reads "interval", "always" or "none".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "interval", "":
		return SyncInterval, nil
	case "always":
		return SyncAlways, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("unknown sync policy %q (want interval, always or none)", s)
}

func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncNone:
		return "none"
	}
	return "interval"
}

// Defaults of LogConfig.
const (
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultCacheBytes   = 64 << 20
	DefaultSegmentBytes = 64 << 20
)

// LogConfig configures the embedded channel log. Dir is required.
type LogConfig struct {
	// Dir holds the segment files and the channel checkpoint.
	Dir string
	// Default is the retention of every channel without its own
	// (SetRetention). The zero value means channels.DefaultRetention.
	Default channels.Retention
	// Sync is the fsync policy; SyncInterval is the period of the group
	// commit under SyncInterval (default 100 ms).
	Sync         SyncPolicy
	SyncInterval time.Duration
	// CacheBytes bounds the memory holding the newest part of the log
	// (default 64 MiB); older records are read from disk.
	CacheBytes int64
	// SegmentBytes is the size at which a segment file is closed and a
	// new one started (default 64 MiB).
	SegmentBytes int64
	// MaxDisk bounds the segment files (0: unbounded): past it the oldest
	// segment is evicted, and readers are told how many messages they
	// missed.
	MaxDisk int64
	// DedupWindow is how long a channel remembers the idempotency keys of
	// stored batches (default channels.DedupWindow), at most DedupMaxKeys
	// of them (default DefaultDedupMaxKeys).
	DedupWindow  time.Duration
	DedupMaxKeys int
	// Now returns the current time (nil: time.Now). Tests set it to drive
	// age retention.
	Now     func() time.Time
	Logger  zerolog.Logger
	Metrics *Metrics // nil: unregistered metrics
}

// Log is the embedded implementation of channels.Log: a durable,
// append-only write-ahead log on disk shared by every channel, plus a RAM
// cache of its newest part.
//
// Every Append encodes one record per channel batch (channel, epoch, first
// offset, ingest time, the messages, a CRC) into the cache and writes it to
// the current segment file in one write; a group commit (fdatasync) makes
// it durable, shared by every append since the previous one. Readers see
// only what is durable, so an offset shown to anyone is never taken back
// by a crash. Each channel keeps an in-memory index of its records; reads
// take them from the cache, or from the segment files when they have left
// it. Retention trims the index; a segment file is deleted when no channel
// retains anything in it (or, past MaxDisk, when it is the oldest).
//
// After a crash, OpenLog reads the segments back, cuts a torn or corrupt
// tail off the last one, and every channel continues in the same epoch
// with the next offset: nothing acknowledged is lost.
type Log struct {
	cfg     LogConfig
	def     channels.Retention
	now     func() time.Time
	logger  zerolog.Logger
	metrics *Metrics
	cache   *cache

	// mu guards the channel map.
	mu   sync.RWMutex
	logs map[string]*chanLog

	// wmu is the write lock: appends, deletes, segment rolls and the
	// committer's hand-over are serialized by it. A channel's next offset
	// changes only under wmu (and the channel's own lock).
	wmu      sync.Mutex
	closed   bool
	active   *segFile
	end      int64       // log position after the last record
	written  int64       // log position up to which the segment files hold the records
	dirty    []*chanLog  // channels with appends not yet committed
	unsynced []*segFile  // rolled segments whose tail is not yet synced
	newFile  bool        // a segment file was created since the last commit
	pend     []pending   // scratch for one append
	diskFull atomic.Bool // the last write failed for lack of space
	// write writes to a segment file (tests inject errors).
	write func(f *os.File, p []byte) (int, error)

	segMu sync.RWMutex
	segs  []*segFile // oldest first; the last is active

	// commitMu serializes commits; committed is the position the last one
	// covered (both the committer's).
	commitMu  sync.Mutex
	committed int64

	// synced is the log position up to which the segment files are on
	// disk; syncedCh is closed (and replaced) at every commit.
	syncMu   sync.Mutex
	synced   int64
	syncedCh chan struct{}
	syncErr  error

	sweepMu   sync.Mutex // one janitor round at a time
	commitReq chan struct{}
	ckptReq   atomic.Bool
	isClosed  atomic.Bool
	evicted   atomic.Uint64
	stop      chan struct{}
	wg        sync.WaitGroup
}

var _ channels.Log = (*Log)(nil)

// chanLog is one channel's state and record index.
type chanLog struct {
	id string

	mu       sync.Mutex
	epoch    [8]byte
	hasEpoch bool
	next     uint64 // offset of the next message (changes under wmu too)
	durable  uint64 // offsets below are committed: readers see these
	lastTime int64  // ingest times are kept non-decreasing per channel
	lastEnd  int64  // log position after the channel's newest record
	entries  []entry
	head     int    // entries[head:] are retained ...
	skip     uint32 // ... but for the first skip messages of the head record,
	skipped  int64  // of this many bytes
	bytes    int64  // message bytes of the retained entries
	ret      channels.Retention
	custom   bool
	notify   chan struct{} // closed when durable moves; made by a waiter
	waiters  int
	deleted  bool
	dirty    bool   // in Log.dirty (guarded by wmu)
	keys     *dedup // idempotency keys stored (guarded by wmu)

	// marks remembers where trimmed records started and when, to answer
	// ReadResult.MissedSince: a ring of the newest len(marks).
	marks  [16]evictMark
	nmarks int
}

// entry indexes one batch record.
type entry struct {
	seg     *segFile
	pos     int64 // log position of the record
	first   uint64
	time    int64
	size    uint32 // record size
	count   uint32
	dataLen uint32
}

type evictMark struct {
	offset uint64
	time   int64
}

type pending struct {
	c      *chanLog
	e      entry
	key    keyDigest
	hasKey bool
}

// OpenLog opens (or creates) the log in cfg.Dir and recovers what it
// holds. Damaged records are cut off, counted and logged; an error is
// returned only when the directory cannot be used at all.
func OpenLog(cfg LogConfig) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded log: no directory")
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = channels.DedupWindow
	}
	if cfg.DedupMaxKeys <= 0 {
		cfg.DedupMaxKeys = DefaultDedupMaxKeys
	}
	l := &Log{
		cfg:       cfg,
		def:       cfg.Default,
		now:       cfg.Now,
		logger:    cfg.Logger,
		metrics:   cfg.Metrics,
		logs:      make(map[string]*chanLog),
		syncedCh:  make(chan struct{}),
		commitReq: make(chan struct{}, 1),
		stop:      make(chan struct{}),
		write:     (*os.File).Write,
	}
	if l.def == (channels.Retention{}) {
		l.def = channels.DefaultRetention
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.metrics == nil {
		l.metrics = NewMetrics(nil)
	}
	slab := 1 << 20
	if int64(slab)*4 > cfg.CacheBytes {
		slab = max(64<<10, int(cfg.CacheBytes/4))
	}
	l.cache = newCache(cfg.CacheBytes, slab)
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded log: %w", err)
	}
	start := time.Now()
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, err
	}
	st := l.Stats()
	l.logger.Info().Int("channels", st.Channels).Int64("messages", st.Messages).Int64("disk_bytes", st.DiskBytes).
		Int("segments", st.Segments).Dur("took", time.Since(start)).Msg("channel logs recovered")
	l.updateGauges()
	l.wg.Add(2)
	go l.committer()
	go l.janitor()
	return l, nil
}

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
	if l.isClosed.Load() {
		return nil
	}
	c := l.logs[ch]
	if c == nil {
		c = &chanLog{id: ch, next: 1, durable: 1}
		l.logs[ch] = c
	}
	return c
}

// Append adds the batches to their channels' logs. Under SyncAlways it
// waits for them to be on disk, as AppendDurable does. When the disk is
// full it waits for space until ctx is done (ErrLogFull): TCP input passes
// a context without deadline and so slows down; HTTP input answers 503.
func (l *Log) Append(ctx context.Context, batches []*channels.Batch) error {
	return l.append(ctx, batches, l.cfg.Sync == SyncAlways)
}

// AppendDurable adds the batches and returns once they are on disk
// (under SyncNone: written to the operating system). Concurrent callers
// share one group commit.
func (l *Log) AppendDurable(ctx context.Context, batches []*channels.Batch) error {
	return l.append(ctx, batches, true)
}

func (l *Log) append(ctx context.Context, batches []*channels.Batch, durable bool) error {
	var retry *time.Timer
	for {
		end, err := l.writeBatches(batches)
		if err == nil {
			if durable && l.cfg.Sync != SyncNone {
				return l.waitSynced(ctx, end)
			}
			return nil
		}
		if !errors.Is(err, errDiskFull) {
			return err
		}
		if retry == nil {
			retry = time.NewTimer(100 * time.Millisecond)
			defer retry.Stop()
		} else {
			retry.Reset(100 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return channels.ErrLogFull
		case <-l.stop:
			return channels.ErrClosed
		case <-retry.C:
		}
	}
}

// errDiskFull is a write that failed for lack of space (retried).
var errDiskFull = errors.New("disk full")

// writeBatches encodes and writes the batches and returns the log position
// after them.
func (l *Log) writeBatches(batches []*channels.Batch) (int64, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return 0, channels.ErrClosed
	}
	l.pend = l.pend[:0]
	for _, b := range batches {
		if b.Len() == 0 {
			continue
		}
		if len(b.ChannelID) > maxChannelID {
			return 0, channels.Errorf(channels.CodeInvalid, "channel id of %d bytes", len(b.ChannelID))
		}
		var key *keyDigest
		var k keyDigest
		if b.Key != "" {
			k = digestKey(b.Key)
			key = &k
			if c := l.lookup(b.ChannelID); c != nil {
				if _, dup := l.lookupKey(c, k); dup {
					// Stored before (its record is before l.end, so
					// waiting for l.end covers it).
					l.metrics.duplicates.Inc()
					continue
				}
			}
			if l.pendingKey(b.ChannelID, k) {
				l.metrics.duplicates.Inc()
				continue
			}
		}
		data, ends := b.Raw()
		size := batchRecordSize(b.ChannelID, key, ends)
		if size > maxRecord {
			return 0, channels.Errorf(channels.CodeInvalid, "batch of %d bytes exceeds the record limit", size)
		}
		if l.active.size.Load()+int64(l.end-l.written) > 0 && l.active.size.Load()+(l.end-l.written)+int64(size) > l.cfg.SegmentBytes {
			if err := l.flush(); err != nil {
				return 0, err
			}
			if err := l.roll(); err != nil {
				return 0, err
			}
		}
		c := l.channel(b.ChannelID)
		if c == nil {
			l.rollback()
			return 0, channels.ErrClosed
		}
		first, last := c.next, c.lastTime
		for _, p := range l.pend {
			if p.c == c {
				first, last = p.e.first+uint64(p.e.count), p.e.time
			}
		}
		t := b.Time
		if t == 0 {
			t = l.now().UnixNano()
		}
		t = max(t, last)
		if !c.hasEpoch {
			c.mu.Lock()
			c.epoch, c.hasEpoch = newEpoch(), true
			c.mu.Unlock()
		}
		dst := l.cache.reserve(l.end, size, l.written)
		putBatchRecord(dst, b.ChannelID, key, c.epoch, first, t, data, ends)
		l.pend = append(l.pend, pending{c: c, key: k, hasKey: key != nil, e: entry{
			seg: l.active, pos: l.end, first: first, time: t,
			size: uint32(size), count: uint32(len(ends)), dataLen: uint32(len(data)),
		}})
		l.end += int64(size)
	}
	if err := l.flush(); err != nil {
		return 0, err
	}
	return l.end, nil
}

// pendingKey reports whether a pending record of this append has key k in
// channel id (wmu held).
func (l *Log) pendingKey(id string, k keyDigest) bool {
	for _, p := range l.pend {
		if p.hasKey && p.key == k && p.c.id == id {
			return true
		}
	}
	return false
}

// channel returns the log of id for an append (wmu held).
func (l *Log) channel(id string) *chanLog {
	if c := l.lookup(id); c != nil {
		return c
	}
	return l.create(id)
}

// flush writes the pending records to the active segment and publishes
// them; on failure it rolls them back (wmu held).
func (l *Log) flush() error {
	if l.end == l.written {
		return nil
	}
	f := l.active
	err := l.cache.pieces(l.written, l.end, func(p []byte) error {
		n, err := l.write(f.f, p)
		f.size.Add(int64(n))
		return err
	})
	if err != nil {
		// Cut what was written of these records off again, so the file
		// ends with a whole record.
		keep := l.written - f.base
		if terr := f.f.Truncate(keep); terr == nil {
			_, terr = f.f.Seek(keep, 0)
			if terr == nil {
				f.size.Store(keep)
			}
		}
		l.rollback()
		if isNoSpace(err) {
			if !l.diskFull.Swap(true) {
				l.logger.Error().Err(err).Str("dir", l.cfg.Dir).Msg("disk full: input waits (HTTP answers 503) until space returns; nothing stored is lost")
			}
			l.metrics.diskFull.Inc()
			return errDiskFull
		}
		l.metrics.writeErrors.Inc()
		return fmt.Errorf("write channel log: %w", err)
	}
	if l.diskFull.Swap(false) {
		l.logger.Info().Msg("disk space is back: input accepted again")
	}
	l.written = l.end
	l.publish()
	return nil
}

// rollback forgets the pending records (wmu held).
func (l *Log) rollback() {
	l.cache.truncate(l.written)
	l.end = l.written
	l.pend = l.pend[:0]
}

// publish adds the written records to their channels' indexes (wmu held).
func (l *Log) publish() {
	wake := false
	for i := range l.pend {
		p := &l.pend[i]
		c := p.c
		c.mu.Lock()
		c.entries = append(c.entries, p.e)
		c.next = p.e.first + uint64(p.e.count)
		c.lastTime = p.e.time
		c.lastEnd = p.e.pos + int64(p.e.size)
		c.bytes += int64(p.e.dataLen)
		p.e.seg.live.Add(1)
		if p.hasKey {
			l.rememberKey(c, p.key, p.e.pos+int64(p.e.size), p.e.time)
		}
		l.trim(c, l.retention(c))
		if l.cfg.Sync == SyncNone {
			l.setDurable(c, c.next)
		} else {
			if !c.dirty {
				c.dirty = true
				l.dirty = append(l.dirty, c)
			}
			wake = wake || c.waiters > 0
		}
		c.mu.Unlock()
		p.c = nil
	}
	l.pend = l.pend[:0]
	if wake {
		l.requestCommit()
	}
}

// setDurable makes offsets below next visible and wakes the waiters (c.mu
// held).
func (l *Log) setDurable(c *chanLog, next uint64) {
	if next <= c.durable {
		return
	}
	c.durable = next
	if c.notify != nil {
		close(c.notify)
		c.notify = nil
	}
}

// trim drops whole records from the head of c while c is over ret (c.mu
// held). Count and Keep are honoured at record grain: at least Count
// messages stay, and a record is dropped only when the messages after it
// are enough.
func (l *Log) trim(c *chanLog, ret channels.Retention) {
	var cutoff int64
	if ret.Age > 0 {
		cutoff = l.now().Add(-ret.Age).UnixNano()
	}
	var n uint64
	for c.head < len(c.entries) {
		e := &c.entries[c.head]
		after := c.next - (e.first + uint64(e.count)) // messages newer than e
		over := ret.Count > 0 && after >= uint64(ret.Count) ||
			ret.Age > 0 && e.time < cutoff && after >= uint64(ret.Keep)
		if ret.Bytes > 0 && c.bytes > ret.Bytes {
			if c.head == len(c.entries)-1 || c.bytes-l.headBytes(c) < ret.Bytes {
				// The bound falls inside the head record: drop messages
				// of it one by one (Bytes is a hard bound).
				n += l.trimHeadBytes(c, c.bytes-ret.Bytes)
				break
			}
			over = true
		}
		if !over {
			break
		}
		n += uint64(e.count - c.skip)
		l.dropHead(c)
	}
	if n > 0 {
		l.evicted.Add(n)
		l.metrics.evictedRetention.Add(float64(n))
	}
}

// headBytes returns the retained message bytes of c's head record.
func (l *Log) headBytes(c *chanLog) int64 {
	return int64(c.entries[c.head].dataLen) - c.skipped
}

// trimHeadBytes drops messages from the head record until at least excess
// bytes are gone (dropping the whole record if need be) and returns how
// many messages it dropped (c.mu held).
func (l *Log) trimHeadBytes(c *chanLog, excess int64) uint64 {
	e := &c.entries[c.head]
	skip, freed := c.skip, int64(0)
	ok := l.recordMessages(e, func(i int, data []byte) {
		if i >= int(c.skip) && freed < excess {
			freed += int64(len(data))
			skip = uint32(i + 1)
		}
	})
	if !ok || skip >= e.count {
		n := uint64(e.count - c.skip)
		l.dropHead(c)
		return n
	}
	if c.skip == 0 {
		c.marks[c.nmarks%len(c.marks)] = evictMark{offset: e.first, time: e.time}
		c.nmarks++
	}
	n := uint64(skip - c.skip)
	c.skip = skip
	c.skipped += freed
	c.bytes -= freed
	return n
}

// recordMessages calls fn with each message of e's record, read from the
// cache or the segment file; false if the record could not be read.
func (l *Log) recordMessages(e *entry, fn func(i int, data []byte)) bool {
	ok := false
	each := func(rec []byte) {
		h, err := parseHeader(rec)
		if err != nil {
			return
		}
		i := 0
		ok = messages(rec, h, func(_ uint64, data []byte) bool {
			fn(i, data)
			i++
			return true
		}) == nil
	}
	if l.cache.read(e.pos, int(e.size), each) {
		return ok
	}
	rec := make([]byte, e.size)
	if _, err := e.seg.f.ReadAt(rec, e.pos-e.seg.base); err != nil || !checkCRC(rec) {
		return false
	}
	each(rec)
	return ok
}

// dropHead removes c's oldest record from its index (c.mu held).
func (l *Log) dropHead(c *chanLog) {
	e := c.entries[c.head]
	if c.skip == 0 {
		c.marks[c.nmarks%len(c.marks)] = evictMark{offset: e.first, time: e.time}
		c.nmarks++
	}
	c.bytes -= int64(e.dataLen) - c.skipped
	c.skip, c.skipped = 0, 0
	e.seg.live.Add(-1)
	c.entries[c.head] = entry{}
	c.head++
	// Compact when the dropped head is most of the slice.
	if c.head >= 64 && c.head*2 >= len(c.entries) {
		n := copy(c.entries, c.entries[c.head:])
		clear(c.entries[n:])
		c.entries = c.entries[:n]
		c.head = 0
	}
}

// first returns the offset of c's oldest retained message (c.mu held).
func (c *chanLog) first() uint64 {
	if c.head < len(c.entries) {
		return c.entries[c.head].first + uint64(c.skip)
	}
	return c.next
}

// requestCommit asks the committer for a commit as soon as possible.
func (l *Log) requestCommit() {
	select {
	case l.commitReq <- struct{}{}:
	default:
	}
}

// waitSynced waits until the segment files are synced up to pos.
func (l *Log) waitSynced(ctx context.Context, pos int64) error {
	l.requestCommit()
	for {
		l.syncMu.Lock()
		synced, ch, err := l.synced, l.syncedCh, l.syncErr
		l.syncMu.Unlock()
		if synced >= pos {
			return nil
		}
		if err != nil && l.isClosed.Load() {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return channels.ErrLogFull
		}
	}
}

func newEpoch() [8]byte {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b
}
