package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
)

// LogConfig configures a Log. Only ShardURLs is required.
type LogConfig struct {
	// ShardURLs are the Redis servers holding channel logs (redis://,
	// rediss:// or unix:// URLs). A channel's shard is chosen with
	// Logplex's rule over the URLs sorted by fragment (or whole URL), so
	// every node must list the same shards.
	ShardURLs []string
	// Default is the retention of channels without their own (zero:
	// channels.DefaultRetention).
	Default channels.Retention
	// BufferBytes bounds, per shard, the accepted messages not yet written
	// (default DefaultBufferBytes). When full, Append waits until its
	// context is done.
	BufferBytes int64
	// FlushInterval is how long a shard writer waits for more messages
	// before writing (default 1 ms); FlushMessages pending messages start
	// a write at once (default 2000).
	FlushInterval time.Duration
	FlushMessages int
	// MaxEntryMessages and MaxEntryBytes bound one stream entry (defaults
	// 1000 messages, 256 KiB); MaxRoundBytes bounds one pipelined write
	// (default 8 MiB).
	MaxEntryMessages int
	MaxEntryBytes    int
	MaxRoundBytes    int
	// Expire drops a channel log that received nothing for this long
	// (default 7 days, as Logplex's history; negative: never).
	Expire time.Duration
	// SweepInterval is how often age retention and changed retentions are
	// applied to channels that receive no appends (default 1 s).
	SweepInterval time.Duration
	// EpochCheckInterval is how often followers re-check the epochs of
	// waited channels, noticing a shard that lost its data (default 1 s).
	EpochCheckInterval time.Duration
	// CloseTimeout bounds how long Close tries to write what is buffered
	// (default 10 s).
	CloseTimeout time.Duration
	// ReadCacheBytes bounds, per shard, the entries kept after reads so
	// that readers of the same entries fetch them once (default 32 MiB;
	// negative: no cache).
	ReadCacheBytes int64
	// WriteTimeout bounds one write round (default 10 s, plus a second per
	// MiB); a round that times out is retried.
	WriteTimeout time.Duration
	// DedupWindow is how long a channel remembers the idempotency keys of
	// stored batches (channels.Batch.Key; default channels.DedupWindow),
	// at most DedupMaxKeys of them (default DefaultDedupMaxKeys; the
	// oldest are forgotten first). Every node of a cluster should use the
	// same values: the node that writes a key prunes the channel's keys.
	DedupWindow  time.Duration
	DedupMaxKeys int

	// SpoolDir, when set, makes the buffer durable: every admitted message
	// is also appended to a spool file of its shard under this directory
	// (shard-<i>/), kept until Redis has it. A Log opened on a directory
	// that holds spooled messages (left by a process that was killed, or
	// closed while Redis was away) writes them to Redis first, ahead of
	// newer messages of the same channels; until they are written Healthy
	// is false and reads of their channels wait for them. One Log at a
	// time uses a directory (it is locked). Empty: memory only.
	SpoolDir string
	// SpoolBytes bounds, per shard, the spool's files (default
	// DefaultSpoolBytes); a full spool makes Append wait like a full
	// buffer. SpoolSegmentBytes is the size at which a new spool file is
	// started (default SpoolBytes/8, at most 64 MiB).
	SpoolBytes        int64
	SpoolSegmentBytes int64
	// SpoolSyncInterval bounds how long admitted messages that no
	// AppendDurable waits for stay in the spool without an fsync (default
	// DefaultSpoolSyncInterval). They reach the file (the OS) at once.
	SpoolSyncInterval time.Duration

	Logger  zerolog.Logger
	Metrics *Metrics
	// Now returns the current time (nil: time.Now).
	Now func() time.Time
}

// DefaultBufferBytes is the default of LogConfig.BufferBytes.
const DefaultBufferBytes = 256 << 20

// DefaultDedupMaxKeys is the default of LogConfig.DedupMaxKeys (about 100
// bytes of Redis memory each).
const DefaultDedupMaxKeys = 100_000

func (c *LogConfig) setDefaults() {
	if c.Default == (channels.Retention{}) {
		c.Default = channels.DefaultRetention
	}
	if c.BufferBytes <= 0 {
		c.BufferBytes = DefaultBufferBytes
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Millisecond
	}
	if c.FlushMessages <= 0 {
		c.FlushMessages = 2000
	}
	if c.MaxEntryMessages <= 0 {
		c.MaxEntryMessages = 1000
	}
	if c.MaxEntryBytes <= 0 {
		c.MaxEntryBytes = 256 << 10
	}
	if c.MaxRoundBytes <= 0 {
		c.MaxRoundBytes = 8 << 20
	}
	if c.Expire == 0 {
		c.Expire = 7 * 24 * time.Hour
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Second
	}
	if c.EpochCheckInterval <= 0 {
		c.EpochCheckInterval = time.Second
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 10 * time.Second
	}
	if c.ReadCacheBytes == 0 {
		c.ReadCacheBytes = 32 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.DedupWindow <= 0 {
		c.DedupWindow = channels.DedupWindow
	}
	if c.DedupMaxKeys <= 0 {
		c.DedupMaxKeys = DefaultDedupMaxKeys
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SpoolBytes <= 0 {
		c.SpoolBytes = DefaultSpoolBytes
	}
	if c.SpoolSegmentBytes <= 0 {
		c.SpoolSegmentBytes = min(c.SpoolBytes/8, 64<<20)
	}
	if c.SpoolSyncInterval <= 0 {
		c.SpoolSyncInterval = DefaultSpoolSyncInterval
	}
}

// Log is the Redis implementation of channels.Log: each channel's log is a
// Redis stream on one shard (see doc.go for the layout). Appends are
// buffered per shard and written by one writer goroutine per shard in
// pipelined rounds, several messages per stream entry; offsets are
// assigned by a Lua script at write time, so they are dense and unique
// across every node writing to the channel.
type Log struct {
	cfg     LogConfig
	log     zerolog.Logger
	shards  []*shard
	picker  shardPicker
	shardOf sync.Map // channel id → int

	writerField string // "w:<random>": this node's idempotency field
	epochBase   string
	epochSeq    atomic.Uint64

	retMu sync.RWMutex
	ret   map[string]channels.Retention // custom retentions (SetRetention)

	lost      atomic.Int64    // accepted messages given up
	kept      atomic.Int64    // accepted messages left in the spool at close
	ctx       context.Context // canceled when stop closes
	cancel    context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	stop      chan struct{} // closed by Close after the flush: stops followers, sweeper
	wg        sync.WaitGroup

	spoolLock *os.File      // flock on SpoolDir
	spoolStop chan struct{} // closed after the writers stop: stops the syncers
	spoolWG   sync.WaitGroup
	crashed   atomic.Bool // test hook: shut down as a killed process would
}

var _ channels.Log = (*Log)(nil)

// OpenLog connects to the shards and starts the writers, followers and the
// sweeper. It does not wait for Redis to be reachable: while a shard is
// down its appends are buffered and Healthy reports false.
func OpenLog(ctx context.Context, cfg LogConfig) (*Log, error) {
	if len(cfg.ShardURLs) == 0 {
		return nil, errors.New("redis log: no shard URLs")
	}
	cfg.setDefaults()
	l := &Log{
		cfg:         cfg,
		log:         cfg.Logger.With().Str("component", "redis_log").Logger(),
		picker:      newShardPicker(len(cfg.ShardURLs)),
		writerField: "w:" + channels.RandomHex(8),
		epochBase:   channels.RandomHex(6),
		ret:         map[string]channels.Retention{},
		stop:        make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	for i, u := range sortShardURLs(cfg.ShardURLs) {
		c, err := newClient(u, 0)
		if err != nil {
			for _, s := range l.shards {
				s.client.Close()
			}
			return nil, fmt.Errorf("redis log: shard %s: %w", redactURL(u), err)
		}
		l.shards = append(l.shards, newShard(l, i, u, c))
	}
	l.spoolStop = make(chan struct{})
	if cfg.SpoolDir != "" {
		if err := l.openSpools(); err != nil {
			for _, s := range l.shards {
				if s.spool != nil {
					s.spool.f.Close()
				}
			}
			l.closeFiles()
			l.cancel()
			return nil, fmt.Errorf("redis log: %w", err)
		}
		for _, s := range l.shards {
			l.spoolWG.Add(1)
			go s.spool.run(l.spoolStop, &l.crashed)
			s.signal()
		}
	}
	for _, s := range l.shards {
		l.wg.Add(2)
		go s.writeLoop()
		go s.fol.run()
	}
	l.wg.Add(1)
	go l.sweeper()
	return l, nil
}

// newEpoch returns an epoch id unique to this node and call.
func (l *Log) newEpoch() string {
	return l.epochBase + strconv.FormatUint(l.epochSeq.Add(1), 36) + strconv.FormatInt(l.cfg.Now().UnixMilli()%1e6, 36)
}

// shardFor returns the shard of a channel.
func (l *Log) shardFor(channelID string) *shard {
	if len(l.shards) == 1 {
		return l.shards[0]
	}
	if v, ok := l.shardOf.Load(channelID); ok {
		return l.shards[v.(int)]
	}
	i := l.picker.pick(channelID)
	l.shardOf.Store(channelID, i)
	return l.shards[i]
}

// ShardOf returns the index (in the sorted shard list) of a channel's shard.
func (l *Log) ShardOf(channelID string) int { return l.shardFor(channelID).idx }

// retention returns the effective retention of a channel.
func (l *Log) retention(channelID string) channels.Retention {
	l.retMu.RLock()
	r, ok := l.ret[channelID]
	l.retMu.RUnlock()
	if ok {
		return r
	}
	return l.cfg.Default
}

// Append implements channels.Log: the batches are admitted to the bounded
// buffers of their shards, all or none, and written shortly after. When a
// buffer is full Append waits until ctx is done and returns
// channels.ErrLogFull.
func (l *Log) Append(ctx context.Context, batches []*channels.Batch) error {
	if l.closed.Load() {
		return channels.ErrClosed
	}
	var first *shard
	multi := false
	for _, b := range batches {
		if b.Len() == 0 {
			continue
		}
		s := l.shardFor(b.ChannelID)
		if first == nil {
			first = s
		} else if s != first {
			multi = true
		}
	}
	if first == nil {
		return nil
	}
	if !multi {
		return first.admit(ctx, batches)
	}
	return l.admitMulti(ctx, batches)
}

// admitMulti admits batches spread over several shards: it locks every
// shard involved (in index order) and admits only when all have room.
func (l *Log) admitMulti(ctx context.Context, batches []*channels.Batch) error {
	need := make([]int64, len(l.shards))
	disk := make([]int64, len(l.shards))
	for _, b := range batches {
		if b.Len() > 0 {
			i := l.shardFor(b.ChannelID).idx
			need[i] += batchSize(b)
			disk[i] += spoolSize(b)
		}
	}
	for {
		var wait chan struct{}
		var full *shard
		for i, s := range l.shards {
			if need[i] == 0 {
				continue
			}
			s.mu.Lock()
			if s.closed {
				l.unlockShards(need, i)
				return channels.ErrClosed
			}
			if wait == nil && !s.hasRoom(need[i], disk[i]) {
				wait, full = s.space, s
			}
		}
		if wait == nil {
			now := l.cfg.Now().UnixNano()
			for _, b := range batches {
				if b.Len() > 0 {
					l.shardFor(b.ChannelID).copyIn(b, now)
				}
			}
			l.unlockShards(need, len(l.shards)-1)
			for i, s := range l.shards {
				if need[i] > 0 {
					s.signal()
					if s.spool != nil {
						s.spool.signal()
					}
				}
			}
			return nil
		}
		l.unlockShards(need, len(l.shards)-1)
		select {
		case <-wait:
		case <-ctx.Done():
			inc(full.m.bufferFull, 1)
			full.stats.bufferFull.Add(1)
			full.lastFull.Store(time.Now().UnixNano())
			return channels.ErrLogFull
		case <-l.stop:
			return channels.ErrClosed
		}
	}
}

func (l *Log) unlockShards(need []int64, upto int) {
	for i := 0; i <= upto; i++ {
		if need[i] > 0 {
			l.shards[i].mu.Unlock()
		}
	}
}

// batchSize is the buffer space a batch takes.
func batchSize(b *channels.Batch) int64 {
	return int64(b.Bytes() + recordHeader*b.Len())
}

// spoolSize is the spool space a batch takes.
func spoolSize(b *channels.Batch) int64 {
	fixed := spoolRecFixed + len(b.ChannelID)
	if b.Key != "" {
		fixed += spoolKeyFields
	}
	return int64(b.Bytes() + fixed*b.Len())
}

// Read implements channels.Log. Offset 0 means the oldest retained
// message; a cursor of another epoch, or beyond the end, sets Reset and
// reads from the oldest retained message. Messages this node accepted for
// the channel are written before the read (read-your-writes), unless the
// shard is failing.
func (l *Log) Read(ctx context.Context, channelID string, from channels.Cursor, limit, maxBytes int, dst *channels.Records) (channels.ReadResult, error) {
	dst.Reset()
	if l.closed.Load() {
		return channels.ReadResult{}, channels.ErrClosed
	}
	s := l.shardFor(channelID)
	s.barrier(ctx, channelID)
	return s.read(ctx, channelID, from, limit, maxBytes, dst, l.retention(channelID))
}

// Wait implements channels.Log.
func (l *Log) Wait(ctx context.Context, channelID string, from channels.Cursor) error {
	if l.closed.Load() {
		return channels.ErrClosed
	}
	s := l.shardFor(channelID)
	s.barrier(ctx, channelID)
	return s.fol.wait(ctx, channelID, from.Epoch, max(from.Offset, 1))
}

// Info implements channels.Log.
func (l *Log) Info(ctx context.Context, channelID string) (channels.LogInfo, error) {
	if l.closed.Load() {
		return channels.LogInfo{}, channels.ErrClosed
	}
	s := l.shardFor(channelID)
	s.barrier(ctx, channelID)
	m, err := s.meta(ctx, channelID, true)
	if err != nil {
		return channels.LogInfo{}, err
	}
	if m.epoch == "" {
		return channels.LogInfo{First: 1, Next: 1}, nil
	}
	first := effectiveFirst(m, l.retention(channelID))
	return channels.LogInfo{Epoch: m.epoch, First: first, Next: m.next, Bytes: m.bytes}, nil
}

// SetRetention implements channels.Log. The retention is local to this
// node: it is applied when this node writes to the channel, by this node's
// sweeper, and (for Count) to this node's reads at once.
func (l *Log) SetRetention(channelID string, r channels.Retention) {
	l.retMu.Lock()
	if r == (channels.Retention{}) {
		delete(l.ret, channelID)
	} else {
		l.ret[channelID] = r
	}
	l.retMu.Unlock()
	s := l.shardFor(channelID)
	s.mu.Lock()
	if s.retrim == nil {
		s.retrim = map[string]struct{}{}
	}
	s.retrim[channelID] = struct{}{}
	s.mu.Unlock()
}

// Delete implements channels.Log: what this node buffered for the channel
// is written first, then the log is deleted; waiters return, and the next
// append starts a new epoch.
func (l *Log) Delete(ctx context.Context, channelID string) error {
	if l.closed.Load() {
		return channels.ErrClosed
	}
	s := l.shardFor(channelID)
	s.barrier(ctx, channelID)
	stream, idx, meta := logKeys(channelID)
	if err := s.client.Del(ctx, stream, idx, meta, keysKey(channelID)).Err(); err != nil {
		return unavailable("delete channel log", err)
	}
	s.fol.wakeAll(channelID)
	s.cache.drop(channelID)
	return nil
}

// Healthy reports whether every shard takes writes: its last write round
// succeeded, the one in flight is not slower than a second, and no append
// found its buffer full in the last 5 seconds. An unhealthy log still
// accepts appends while its buffers have room (degraded).
func (l *Log) Healthy() bool {
	for _, s := range l.shards {
		if !s.isHealthy() {
			return false
		}
	}
	return true
}

// ShardStats describes one shard of a Log.
type ShardStats struct {
	URL           string // redacted
	Healthy       bool
	BufferedBytes int64 // accepted, not yet written
	SpoolBytes    int64 // the spool's files
	Written       int64 // messages written
	Flushes       int64 // write rounds completed
	WriteErrors   int64 // failed write rounds (retried)
	BufferFull    int64 // appends refused with ErrLogFull
	Dropped       int64 // accepted messages given up (poisoned keys, close deadline)
	Duplicates    int64 // batches not stored: their idempotency key was stored before
}

// Stats returns the state of every shard, in shard order.
func (l *Log) Stats() []ShardStats {
	out := make([]ShardStats, len(l.shards))
	for i, s := range l.shards {
		s.mu.Lock()
		b := s.bytes
		s.mu.Unlock()
		var sb int64
		if s.spool != nil {
			sb = s.spool.size.Load()
		}
		out[i] = ShardStats{
			URL:           redactURL(s.url),
			Healthy:       s.isHealthy(),
			BufferedBytes: b,
			SpoolBytes:    sb,
			Written:       s.stats.written.Load(),
			Flushes:       s.stats.flushes.Load(),
			WriteErrors:   s.stats.writeErrors.Load(),
			BufferFull:    s.stats.bufferFull.Load(),
			Dropped:       s.stats.dropped.Load(),
			Duplicates:    s.stats.duplicates.Load(),
		}
	}
	return out
}

// BufferedBytes returns the bytes accepted and not yet written, over all
// shards.
func (l *Log) BufferedBytes() int64 {
	var n int64
	for _, s := range l.shards {
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}

// AppendDurable appends the batches and waits until they are written to
// Redis or, while their shard is failing, until they are fsynced in the
// node's spool (they are written when the shard is back). Waiters share
// the spool's fsyncs (group commit). Without a spool a failing shard's
// messages wait in the memory buffer (see Written). When ctx ends first
// it returns channels.ErrLogFull; the messages stay admitted.
func (l *Log) AppendDurable(ctx context.Context, batches []*channels.Batch) error {
	if err := l.Append(ctx, batches); err != nil {
		return err
	}
	for _, b := range batches {
		if b.Len() == 0 {
			continue
		}
		s := l.shardFor(b.ChannelID)
		if s.spool == nil {
			s.barrier(ctx, b.ChannelID)
			continue
		}
		if err := s.durable(ctx, b.ChannelID); err != nil {
			return err
		}
	}
	return nil
}

// Written waits until the messages of channelID accepted before the call
// are written to Redis, unless the channel's shard is failing (they then
// wait in the bounded buffer and are written when it is back) or ctx ends.
// HTTP input calls it before answering, so that while Redis is healthy a
// 204 means the messages are in Redis, readable from every node.
func (l *Log) Written(ctx context.Context, channelID string) {
	l.shardFor(channelID).barrier(ctx, channelID)
}

// Flush waits until everything accepted before the call is written, or
// ctx is done.
func (l *Log) Flush(ctx context.Context) error {
	for _, s := range l.shards {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close stops accepting appends, writes what is buffered (for at most
// CloseTimeout), wakes every waiter (ErrClosed) and disconnects. Messages
// still buffered at the deadline stay in the spool for the next start
// (reported in the log), or without a spool are lost (reported in the
// error).
func (l *Log) Close() error {
	l.shutdown(false)
	return l.closeErr
}

// shutdown is Close; with crash (a test hook) it stops at once as a killed
// process would: nothing more is written to Redis, records not yet handed
// to a spool file are lost, and the files are closed without an fsync.
func (l *Log) shutdown(crash bool) {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		for _, s := range l.shards {
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
		}
		if crash {
			l.crashed.Store(true)
			close(l.spoolStop)
			l.spoolWG.Wait()
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), l.cfg.CloseTimeout)
			for _, s := range l.shards {
				s.closeWriter(ctx)
			}
			cancel()
		}
		close(l.stop)
		l.cancel()
		for _, s := range l.shards {
			s.fol.kick()
		}
		l.wg.Wait()
		if !crash {
			close(l.spoolStop)
			l.spoolWG.Wait()
		}
		for _, s := range l.shards {
			s.fol.closeAll()
		}
		l.closeFiles()
		if kept := l.kept.Load(); kept > 0 && !crash {
			l.log.Warn().Int64("messages", kept).Str("spool_dir", l.cfg.SpoolDir).Msg("messages not written to Redis before the close deadline stay in the spool; the next start writes them")
		}
		if lost := l.lost.Load(); lost > 0 {
			l.closeErr = fmt.Errorf("redis log: %d buffered messages could not be written before the close deadline", lost)
		}
	})
}

// closeFiles disconnects the shards and releases the spool directory
// (the syncers close the spool files).
func (l *Log) closeFiles() {
	for _, s := range l.shards {
		s.client.Close()
	}
	if l.spoolLock != nil {
		l.spoolLock.Close()
	}
}

// sweeper applies retention to channels whose retention changed and, for
// age bounds, to the channels this node wrote to.
func (l *Log) sweeper() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		for _, s := range l.shards {
			s.sweep()
		}
	}
}

// meta is the decoded meta hash of a channel log.
type logMeta struct {
	epoch string // "" when the log does not exist
	next  uint64
	first uint64
	bytes int64
	et    int64
}

func parseMeta(vals []any) logMeta {
	var m logMeta
	str := func(i int) string {
		if i < len(vals) {
			if s, ok := vals[i].(string); ok {
				return s
			}
		}
		return ""
	}
	m.epoch = str(0)
	if m.epoch == "" {
		return logMeta{}
	}
	m.next, _ = strconv.ParseUint(str(1), 10, 64)
	m.first, _ = strconv.ParseUint(str(2), 10, 64)
	m.bytes, _ = strconv.ParseInt(str(3), 10, 64)
	m.et, _ = strconv.ParseInt(str(4), 10, 64)
	m.next = max(m.next, 1)
	m.first = min(max(m.first, 1), m.next)
	return m
}

var metaFields = []string{"epoch", "next", "first", "bytes", "et"}

// effectiveFirst applies the local Count bound on top of the stored first
// offset (a retention lowered here shows at once).
func effectiveFirst(m logMeta, r channels.Retention) uint64 {
	first := m.first
	if r.Count > 0 && m.next > uint64(r.Count) && m.next-uint64(r.Count) > first {
		first = m.next - uint64(r.Count)
	}
	return first
}

func unavailable(op string, err error) error {
	if ce := (*channels.Error)(nil); errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return channels.Errorf(channels.CodeUnavailable, "%s: %w", op, err)
	}
	return channels.Errorf(channels.CodeUnavailable, "%s: redis: %w", op, err)
}
