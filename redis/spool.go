package redis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The spool is a shard's write-behind buffer on local disk: every message
// admitted to the shard's memory buffer is also appended to the shard's
// current spool segment (SpoolDir/shard-<i>/<number>.spool), and segments
// are deleted once every message in them is written to Redis. A Log opened
// on a directory that holds segments (a node that crashed, or closed with
// Redis away) queues their messages first, ahead of anything new.
//
// A segment starts with a header
//
//	"PXSPOOL1" | uint64 run (Unix ns when the writing Log opened) |
//	uint16 length | writer field | uint32 Castagnoli CRC of what precedes
//
// followed by records, big-endian:
//
//	uint32 CRC of what follows, to the end of the record
//	uint32 length of what follows
//	uint64 write sequence number of the message (see chunk.seq)
//	int64  ingest time (Unix ns)
//	uint16 channel id length | channel id | [key fields] | message
//
// A message of a batch with an idempotency key has the length's top bit
// (0x8000) set and key fields after the channel id: the key's digest (16
// bytes, see keysKey) and uint32 the batch's message count. A keyed
// batch's records are consecutive in one segment (they are added under
// the shard's lock and handed to the file together); a replay makes them
// one chunk again, as they were, and drops a keyed batch whose records
// are not all there (a torn tail): it was not acknowledged (neither
// written to Redis, where the replay would skip it, nor fsynced), and
// writing part of it under its key would make the client's retry store
// nothing of the rest. Segments with keyed records cannot be read by a
// Plexus version from before keys (they end at the first one, as torn).
//
// A message's sequence number is the one its stream entry carries (the
// entry's is its last message's), under the writer field of the segment,
// so messages that Redis applied before a crash are recognized by the
// append script and skipped when the segment is replayed.

const (
	spoolMagic     = "PXSPOOL1"
	spoolExt       = ".spool"
	spoolRecFixed  = 26 // crc, length, seq, time, channel length
	spoolKeyFields = 20 // digest, batch message count
	spoolKeyFlag   = 0x8000
	spoolDirLock   = "LOCK"

	// DefaultSpoolBytes is the default of LogConfig.SpoolBytes.
	DefaultSpoolBytes = 1 << 30
	// DefaultSpoolSyncInterval is the default of LogConfig.SpoolSyncInterval.
	DefaultSpoolSyncInterval = 100 * time.Millisecond
)

var spoolCRC = crc32.MakeTable(crc32.Castagnoli)

// spoolRecordSize is the size of a message's spool record.
func spoolRecordSize(channelID string, msgLen int, keyed bool) int64 {
	n := int64(spoolRecFixed + len(channelID) + msgLen)
	if keyed {
		n += spoolKeyFields
	}
	return n
}

// appendSpoolRecord appends one record to b; key is nil for a message
// without an idempotency key, else count is its batch's message count.
func appendSpoolRecord(b []byte, seq uint64, t int64, channelID string, msg []byte, key *keyDigest, count int) []byte {
	start := len(b)
	cl, size := uint16(len(channelID)), spoolRecFixed-8+len(channelID)+len(msg)
	if key != nil {
		cl |= spoolKeyFlag
		size += spoolKeyFields
	}
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	b = binary.BigEndian.AppendUint16(b, cl)
	b = append(b, channelID...)
	if key != nil {
		b = append(b, key[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(count))
	}
	b = append(b, msg...)
	binary.BigEndian.PutUint32(b[start:], crc32.Checksum(b[start+4:], spoolCRC))
	return b
}

func spoolHeader(run int64, writerField string) []byte {
	h := []byte(spoolMagic)
	h = binary.BigEndian.AppendUint64(h, uint64(run))
	h = binary.BigEndian.AppendUint16(h, uint16(len(writerField)))
	h = append(h, writerField...)
	return binary.BigEndian.AppendUint32(h, crc32.Checksum(h, spoolCRC))
}

var errBadSpoolHeader = errors.New("bad spool segment header")

// parseSpoolHeader returns the run and writer field of a segment and the
// header's size.
func parseSpoolHeader(data []byte) (run int64, writerField string, size int, err error) {
	if len(data) < len(spoolMagic)+14 || string(data[:len(spoolMagic)]) != spoolMagic {
		return 0, "", 0, errBadSpoolHeader
	}
	n := int(binary.BigEndian.Uint16(data[len(spoolMagic)+8:]))
	size = len(spoolMagic) + 10 + n + 4
	if len(data) < size || binary.BigEndian.Uint32(data[size-4:]) != crc32.Checksum(data[:size-4], spoolCRC) {
		return 0, "", 0, errBadSpoolHeader
	}
	run = int64(binary.BigEndian.Uint64(data[len(spoolMagic):]))
	writerField = string(data[len(spoolMagic)+10 : size-4])
	return run, writerField, size, nil
}

// spoolRecord is a parsed spool record; its slices point into the segment.
type spoolRecord struct {
	seq       uint64
	t         int64
	channelID []byte
	msg       []byte
	key       *keyDigest // nil: none
	count     int        // keyed: the batch's message count
}

// parseSpoolRecords calls fn for each record of data (a segment after its
// header) until its end or the first torn or corrupt record, and returns
// the number of bytes from there to the end (0 when the segment is whole).
func parseSpoolRecords(data []byte, fn func(r *spoolRecord)) (bad int) {
	var r spoolRecord
	var key keyDigest
	for len(data) > 0 {
		if len(data) < spoolRecFixed {
			return len(data)
		}
		n := int(binary.BigEndian.Uint32(data[4:8]))
		if n < spoolRecFixed-8 || len(data)-8 < n || binary.BigEndian.Uint32(data) != crc32.Checksum(data[4:8+n], spoolCRC) {
			return len(data)
		}
		rec := data[8 : 8+n]
		cl := int(binary.BigEndian.Uint16(rec[16:18]))
		keyed := cl&spoolKeyFlag != 0
		cl &^= spoolKeyFlag
		end := 18 + cl
		if keyed {
			end += spoolKeyFields
		}
		if end > n {
			return len(data)
		}
		r = spoolRecord{seq: binary.BigEndian.Uint64(rec), t: int64(binary.BigEndian.Uint64(rec[8:])), channelID: rec[18 : 18+cl], msg: rec[end:]}
		if keyed {
			copy(key[:], rec[18+cl:])
			r.key, r.count = &key, int(binary.BigEndian.Uint32(rec[18+cl+keySize:]))
		}
		fn(&r)
		data = data[8+n:]
	}
	return 0
}

// spool is one shard's spool. Fields marked "s.mu" are guarded by the
// shard's mutex; the others belong to the syncer goroutine (run) once the
// Log is open.
type spool struct {
	s        *shard
	dir      string
	limit    int64
	segBytes int64
	interval time.Duration
	header   []byte
	size     atomic.Int64 // bytes of this shard's files and buffered records (and of old segments of its directory)

	buf        []byte        // s.mu: records not yet handed to the file
	end        int64         // s.mu: logical position after the last record
	written    int64         // s.mu: logical position handed to the file
	synced     int64         // s.mu: logical position fsynced
	syncedCh   chan struct{} // s.mu: closed (and replaced) when synced moves
	syncWanted bool          // s.mu: a durable append waits for an fsync
	segs       []*spoolSeg   // s.mu: this run's segments, oldest first; the last is current

	wake      chan struct{} // cap 1: records buffered or an fsync wanted
	f         *os.File
	fsize     int64
	nextNum   uint64
	rotate    bool // a write failed: continue in a new segment
	spare     []byte
	lastErrAt time.Time
}

// spoolSeg is one segment file. Segments of this run cover the logical
// positions [start, end) (end is -1 while current); old segments (written
// by an earlier Log) are deleted when their replayed chunks are written.
type spoolSeg struct {
	path       string
	start, end int64
	size       int64
	owner      *spool       // whose size counts the file
	pending    atomic.Int64 // old segment: replayed chunks not yet written
}

// oldSegment is a segment found when the Log opens.
type oldSegment struct {
	path string
	dir  int // shard index of its directory
	num  uint64
	run  int64
}

// lockSpoolDir creates root and takes an exclusive lock on it.
func lockSpoolDir(root string) (*os.File, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(root, spoolDirLock), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool dir %s is in use by another process: %w", root, err)
	}
	return f, nil
}

// findOldSegments lists the segments under root, oldest run first.
func findOldSegments(root string) ([]oldSegment, error) {
	dirs, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	var out []oldSegment
	for _, d := range dirs {
		idx, ok := strings.CutPrefix(d.Name(), "shard-")
		i, err := strconv.Atoi(idx)
		if !ok || !d.IsDir() || err != nil || i < 0 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("spool dir: %w", err)
		}
		for _, f := range files {
			base, ok := strings.CutSuffix(f.Name(), spoolExt)
			num, err := strconv.ParseUint(base, 10, 64)
			if !ok || err != nil {
				continue
			}
			path := filepath.Join(root, d.Name(), f.Name())
			seg := oldSegment{path: path, dir: i, num: num}
			if h, err := readHead(path); err == nil {
				seg.run, _, _, _ = parseSpoolHeader(h)
			}
			out = append(out, seg)
		}
	}
	slices.SortFunc(out, func(a, b oldSegment) int {
		if a.run != b.run {
			return cmpInt(a.run, b.run)
		}
		if a.dir != b.dir {
			return a.dir - b.dir
		}
		return cmpInt(a.num, b.num)
	})
	return out, nil
}

func cmpInt[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 512)
	n, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return b[:n], err
}

// newSpool creates a shard's spool directory and its first segment,
// numbered after the old segments in it.
func newSpool(s *shard, root string, old []oldSegment, run int64) (*spool, error) {
	cfg := &s.l.cfg
	p := &spool{
		s:        s,
		dir:      filepath.Join(root, "shard-"+strconv.Itoa(s.idx)),
		limit:    cfg.SpoolBytes,
		segBytes: cfg.SpoolSegmentBytes,
		interval: cfg.SpoolSyncInterval,
		header:   spoolHeader(run, s.l.writerField),
		syncedCh: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		nextNum:  1,
	}
	for _, o := range old {
		if o.dir == s.idx {
			p.nextNum = max(p.nextNum, o.num+1)
		}
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := p.newSegment(); err != nil {
		return nil, err
	}
	return p, nil
}

// newSegment makes a new current segment: the previous one is fsynced and
// closed. The syncer's (or, at open, OpenLog's) only.
func (p *spool) newSegment() error {
	path := filepath.Join(p.dir, fmt.Sprintf("%020d%s", p.nextNum, spoolExt))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Write(p.header); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("spool: %w", err)
	}
	if p.f != nil {
		// What the old segment holds must be durable before anything
		// later is reported synced.
		if err := p.f.Sync(); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("spool: sync %s: %w", p.f.Name(), err)
		}
		p.f.Close()
	}
	if err := syncDir(p.dir); err != nil {
		// The new file may vanish in a power loss: keep writing the old one.
		f.Close()
		os.Remove(path)
		return err
	}
	p.nextNum++
	p.f, p.fsize = f, int64(len(p.header))
	p.rotate = false
	p.size.Add(int64(len(p.header)))
	s := p.s
	s.mu.Lock()
	if n := len(p.segs); n > 0 {
		p.segs[n-1].end = p.written
	}
	p.segs = append(p.segs, &spoolSeg{path: path, start: p.written, end: -1, size: p.fsize, owner: p})
	// The previous segment may hold only written messages already.
	var remove []string
	if len(p.segs) > 1 && !s.stopping() {
		remove = p.truncate(s.unwrittenPos(), nil)
	}
	s.mu.Unlock()
	s.l.removeSegments(remove)
	return nil
}

// syncDir fsyncs a directory, making a new file in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: sync %s: %w", dir, err)
	}
	return nil
}

func (p *spool) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// add appends a message's record (key: see appendSpoolRecord). s.mu is
// held.
func (p *spool) add(seq uint64, t int64, channelID string, msg []byte, key *keyDigest, count int) {
	p.buf = appendSpoolRecord(p.buf, seq, t, channelID, msg, key, count)
	n := spoolRecordSize(channelID, len(msg), key != nil)
	p.end += n
	p.size.Add(n)
}

// run is the spool's syncer: it hands buffered records to the file as
// they come, and fsyncs when a durable append waits (group commit: the
// appends arriving during an fsync share the next one) and otherwise
// every interval. It returns when stop closes: after a last write and
// fsync, or at once when crashed is set (a killed process).
func (p *spool) run(stop <-chan struct{}, crashed *atomic.Bool) {
	defer p.s.l.spoolWG.Done()
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		due := false
		select {
		case <-p.wake:
		case <-tick.C:
			due = true
		case <-stop:
			if !crashed.Load() {
				p.flush(true)
			}
			p.f.Close()
			return
		}
		p.flush(due)
	}
}

// flush writes the buffered records and, when sync is set or a durable
// append waits, fsyncs them.
func (p *spool) flush(sync bool) {
	s := p.s
	s.mu.Lock()
	buf := p.buf
	p.buf = p.spare[:0]
	p.spare = nil
	end := p.end
	sync = sync || p.syncWanted
	p.syncWanted = false
	synced := p.synced
	s.mu.Unlock()

	err := p.write(buf)
	if err != nil {
		// Keep the records that did not reach the file, ahead of newer ones.
		s.mu.Lock()
		p.buf = append(buf, p.buf...)
		s.mu.Unlock()
	} else {
		p.spare = buf[:0]
		if sync && synced < end {
			if err = p.f.Sync(); err != nil {
				err = fmt.Errorf("spool: sync %s: %w", p.f.Name(), err)
				// What the failed fsync covered may be lost: write it
				// again, in a new segment.
				p.rotate = true
			} else {
				s.mu.Lock()
				p.synced = end
				close(p.syncedCh)
				p.syncedCh = make(chan struct{})
				s.mu.Unlock()
			}
		}
	}
	if err != nil && time.Since(p.lastErrAt) > 5*time.Second {
		p.lastErrAt = time.Now()
		s.l.log.Error().Err(err).Str("shard", s.name).Msg("writing the redis spool failed; retrying")
	}
}

// write hands buf (whole records) to the current segment, starting a new
// one when it is full or after a failed write. On error nothing of buf
// counts as written.
func (p *spool) write(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if p.rotate || p.fsize >= p.segBytes {
		if err := p.newSegment(); err != nil {
			p.rotate = true
			return err
		}
	}
	n, err := p.f.Write(buf)
	p.fsize += int64(n)
	if err != nil {
		// A partial record ends this segment (a torn tail when read).
		p.rotate = true
		return fmt.Errorf("spool: write %s: %w", p.f.Name(), err)
	}
	s := p.s
	s.mu.Lock()
	p.written += int64(len(buf))
	p.segs[len(p.segs)-1].size = p.fsize
	s.mu.Unlock()
	return nil
}

// truncate deletes the segments of this run whose records all have
// positions before minPos, except the current one. s.mu is held; the
// caller removes the returned files after unlocking.
func (p *spool) truncate(minPos int64, remove []string) []string {
	i := 0
	for i < len(p.segs)-1 && p.segs[i].end <= minPos {
		remove = append(remove, p.segs[i].path)
		p.size.Add(-p.segs[i].size)
		p.segs[i] = nil
		i++
	}
	if i > 0 {
		p.segs = p.segs[i:]
	}
	return remove
}

// replay reads an old segment and queues its messages on their shards,
// each as a chunk of the writer that spooled it. It returns the messages
// queued and the bytes of a torn or corrupt tail. Called by OpenLog before
// the writers start.
func (l *Log) replay(o oldSegment, owner *spool) (msgs int, bad int, err error) {
	data, err := os.ReadFile(o.path)
	if err != nil {
		return 0, 0, fmt.Errorf("spool: %w", err)
	}
	seg := &spoolSeg{path: o.path, size: int64(len(data)), owner: owner, end: -1}
	owner.size.Add(seg.size)
	_, wf, hsize, err := parseSpoolHeader(data)
	if err != nil {
		// Not even a header survived (a crash while creating the file).
		l.dropSegment(seg)
		return 0, len(data), nil
	}
	now := l.cfg.Now().UnixNano()
	open := map[string]*chunk{}
	var chunks []*chunk // in the order they were started
	maxMsgs, maxBytes := l.cfg.MaxEntryMessages, l.cfg.MaxEntryBytes
	bad = parseSpoolRecords(data[hsize:], func(r *spoolRecord) {
		c := open[string(r.channelID)]
		next := c != nil && r.seq == c.seq+1
		if r.key != nil {
			next = next && c.keyed && c.key == *r.key && c.n < c.count
		} else {
			next = next && !c.keyed && c.n < maxMsgs && len(c.d)+recordHeader+len(r.msg) <= maxBytes
		}
		if !next {
			ch := string(r.channelID)
			s := l.shardFor(ch)
			st := s.chans[ch]
			if st == nil {
				st = &chanState{base: max(s.maxSeq, uint64(now/1e3))}
				s.chans[ch] = st
			}
			c = s.newChunk(ch, st)
			c.wf, c.seg, c.tmin = wf, seg, r.t
			if r.key != nil {
				c.key, c.keyed, c.count = *r.key, true, r.count
			}
			chunks = append(chunks, c)
			open[ch] = c
		}
		c.add(r.t, r.msg)
		c.seq = r.seq
	})
	partial := 0
	for _, c := range chunks {
		if c.keyed && c.n != c.count {
			// A keyed batch cut by a torn tail (see the format above).
			partial += c.n
			continue
		}
		s := l.shardFor(c.ch)
		s.queue = append(s.queue, c)
		s.bytes += int64(len(c.d))
		s.pendingMsgs += c.n
		s.replayLeft.Add(1)
		c.st.admitted += uint64(c.n)
		seg.pending.Add(1)
		msgs += c.n
	}
	if partial > 0 {
		l.log.Warn().Int("messages", partial).Str("path", o.path).Msg("redis spool: dropped the part of a keyed batch a crash left (it was not acknowledged)")
	}
	if seg.pending.Load() == 0 {
		l.dropSegment(seg)
	}
	return msgs, bad, nil
}

// removeSegments deletes segments of this run whose messages are written.
func (l *Log) removeSegments(paths []string) {
	for _, path := range paths {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn().Err(err).Str("path", path).Msg("removing a written spool segment failed")
		}
	}
}

// dropSegment deletes an old segment whose messages are all written.
func (l *Log) dropSegment(seg *spoolSeg) {
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Warn().Err(err).Str("path", seg.path).Msg("removing a written spool segment failed")
		return
	}
	seg.owner.size.Add(-seg.size)
}

// openSpools locks SpoolDir, opens every shard's spool and queues what an
// earlier process left there.
func (l *Log) openSpools() error {
	root := l.cfg.SpoolDir
	lock, err := lockSpoolDir(root)
	if err != nil {
		return err
	}
	l.spoolLock = lock
	old, err := findOldSegments(root)
	if err != nil {
		return err
	}
	run := time.Now().UnixNano()
	for _, s := range l.shards {
		if s.spool, err = newSpool(s, root, old, run); err != nil {
			return err
		}
	}
	var msgs, bad, badSegs int
	for _, o := range old {
		owner := l.shards[0].spool
		if o.dir < len(l.shards) {
			owner = l.shards[o.dir].spool
		}
		n, b, err := l.replay(o, owner)
		if err != nil {
			return err
		}
		msgs += n
		bad += b
		if b > 0 {
			badSegs++
		}
	}
	if bad > 0 {
		l.log.Warn().Int("bytes", bad).Int("segments", badSegs).Msg("redis spool: cut torn or corrupt tails (records a crash interrupted)")
	}
	if msgs > 0 {
		l.log.Info().Int("messages", msgs).Int("segments", len(old)).Msg("redis spool: writing the messages a previous process left to Redis first")
	}
	for _, s := range l.shards {
		for _, st := range s.chans {
			s.maxSeq = max(s.maxSeq, st.base)
		}
	}
	return nil
}

// unwritten reports whether records are buffered and not yet handed to
// the file.
func (p *spool) unwritten() bool {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.written < p.end
}
