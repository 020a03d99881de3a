package embedded

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// segFile is one segment file of the write-ahead log, named by the log
// position of its first byte.
type segFile struct {
	base int64
	path string
	f    *os.File
	size atomic.Int64 // bytes in the file (the active one grows under wmu)

	live atomic.Int64 // batch records still indexed by a channel
	refs atomic.Int32 // readers reading from the file now
	gone atomic.Bool  // closed and removed
}

const segSuffix = ".wal"

func segName(base int64) string { return fmt.Sprintf("%020d%s", base, segSuffix) }

// roll starts a new segment at the current end (wmu held). The previous
// one is synced by the next commit.
func (l *Log) roll() error {
	s, err := l.createSegment(l.end)
	if err != nil {
		return err
	}
	l.unsynced = append(l.unsynced, l.active)
	l.active = s
	l.newFile = true
	l.segMu.Lock()
	l.segs = append(l.segs, s)
	l.segMu.Unlock()
	return nil
}

func (l *Log) createSegment(base int64) (*segFile, error) {
	path := filepath.Join(l.cfg.Dir, segName(base))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		if isNoSpace(err) {
			return nil, errDiskFull
		}
		return nil, fmt.Errorf("create segment: %w", err)
	}
	preallocate(f, l.cfg.SegmentBytes)
	return &segFile{base: base, path: path, f: f}, nil
}

// preallocate reserves a new segment's blocks without changing its size
// (FALLOC_FL_KEEP_SIZE): the group commit's writeback then finds them
// allocated instead of allocating them while the appenders write (≈ 5 %
// less server CPU end to end on ext4; see docs/performance.md, which also
// has the cost to BenchmarkLogAppend alone). Best effort: a filesystem
// without fallocate, or without the space, allocates as it is written.
// Recovery is unaffected (the file's size is what was written); on disk
// the active segment takes up to SegmentBytes more than -max-disk counts.
func preallocate(f *os.File, n int64) {
	_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, n)
}

// recover reads the checkpoint and the segment files back (at open).
func (l *Log) recover() error {
	ck, err := l.readCheckpoint()
	if err != nil {
		l.logger.Error().Err(err).Msg("channel checkpoint unreadable: channels deleted before it may reappear, custom retentions are forgotten")
		l.metrics.corrupt.WithLabelValues("checkpoint").Inc()
		ck = checkpoint{}
	}
	for _, cs := range ck.Channels {
		c := &chanLog{id: cs.ID, next: cs.Next, durable: cs.Next, lastTime: cs.LastTime}
		if e, ok := parseEpoch(cs.Epoch); ok {
			c.epoch, c.hasEpoch = e, true
		}
		if cs.Retention != nil {
			c.ret, c.custom = cs.Retention.retention(), true
		}
		l.restoreKeys(c, cs.Keys)
		l.logs[cs.ID] = c
	}

	names, err := filepath.Glob(filepath.Join(l.cfg.Dir, "*"+segSuffix))
	if err != nil {
		return err
	}
	type found struct {
		base int64
		path string
	}
	var files []found
	for _, p := range names {
		base, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(p), segSuffix), 10, 64)
		if err != nil || base < 0 {
			l.logger.Warn().Str("file", p).Msg("ignoring a file that is not a segment")
			continue
		}
		files = append(files, found{base, p})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].base < files[j].base })

	var prevEnd int64 = -1
	for i, fd := range files {
		last := i == len(files)-1
		if prevEnd >= 0 && fd.base < prevEnd {
			// Overlap: the earlier segment was cut short by damage and a
			// later one was started after it; positions stay unique
			// because bases only grow, so this is a bug or a foreign file.
			l.logger.Error().Str("file", fd.path).Msg("segment overlaps the previous one: ignored")
			continue
		}
		mode := os.O_RDONLY
		if last {
			mode = os.O_RDWR
		}
		f, err := os.OpenFile(fd.path, mode, 0)
		if err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		s := &segFile{base: fd.base, path: fd.path, f: f}
		l.segs = append(l.segs, s)
		size, err := l.scan(s, ck.Pos, last)
		if err != nil {
			return err
		}
		s.size.Store(size)
		prevEnd = s.base + s.size.Load()
	}

	// The active segment: the last one, or a new one.
	if n := len(l.segs); n > 0 && l.segs[n-1].size.Load() < l.cfg.SegmentBytes {
		l.active = l.segs[n-1]
		if _, err := l.active.f.Seek(l.active.size.Load(), io.SeekStart); err != nil {
			return fmt.Errorf("seek segment: %w", err)
		}
		preallocate(l.active.f, l.cfg.SegmentBytes)
	} else {
		var base int64
		if n > 0 {
			base = l.segs[n-1].base + l.segs[n-1].size.Load()
		}
		base = max(base, ck.Pos)
		s, err := l.createSegment(base)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		l.active = s
		l.newFile = true
	}
	l.end = l.active.base + l.active.size.Load()
	l.written = l.end
	l.synced = l.end
	l.committed = l.end
	for _, c := range l.logs {
		c.durable = c.next
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		return fmt.Errorf("sync log dir: %w", err)
	}
	return nil
}

// scan reads the records of one segment into the channel indexes and
// returns the size of its valid part. Damage in the last segment is a torn
// tail: it is cut off. Damage in an earlier one costs the rest of that
// file, which stays as it is.
func (l *Log) scan(s *segFile, ckPos int64, last bool) (int64, error) {
	st, err := s.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat segment: %w", err)
	}
	fileSize := st.Size()
	r := bufio.NewReaderSize(s.f, 1<<20)
	var (
		pos int64
		buf = make([]byte, 64<<10)
		hdr [headerSize]byte
	)
	damaged := func(why string) (int64, error) {
		lost := fileSize - pos
		l.metrics.corrupt.WithLabelValues("record").Inc()
		l.metrics.tornBytes.Add(float64(lost))
		ev := l.logger.Error().Str("file", s.path).Int64("at", pos).Int64("bytes_lost", lost).Str("why", why)
		if !last {
			ev.Msg("damaged record in a segment: the rest of the file is skipped")
			return pos, nil
		}
		ev.Msg("torn or damaged tail cut off the last segment")
		if err := s.f.Truncate(pos); err != nil {
			return 0, fmt.Errorf("truncate torn segment: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return 0, fmt.Errorf("sync truncated segment: %w", err)
		}
		return pos, nil
	}
	for pos < fileSize {
		if fileSize-pos < headerSize {
			return damaged("short header")
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return damaged("short header")
		}
		h, err := parseHeader(hdr[:])
		if err != nil {
			return damaged("bad header")
		}
		if int64(h.size) > fileSize-pos {
			return damaged("short record")
		}
		if cap(buf) < int(h.size) {
			buf = make([]byte, h.size)
		}
		rec := buf[:h.size]
		copy(rec, hdr[:])
		if _, err := io.ReadFull(r, rec[headerSize:]); err != nil {
			return damaged("short record")
		}
		if !checkCRC(rec) {
			return damaged("checksum mismatch")
		}
		l.replay(s, s.base+pos, ckPos, rec, h)
		pos += int64(h.size)
	}
	return pos, nil
}

// replay applies one recovered record to the channel indexes. Records
// before the checkpoint position count only for channels the checkpoint
// knows, in the epoch it knows: the others were deleted since.
func (l *Log) replay(s *segFile, pos, ckPos int64, rec []byte, h header) {
	id := string(recordChannel(rec, h))
	c := l.logs[id]
	if h.typ == recDelete {
		if pos >= ckPos && c != nil {
			l.clearIndex(c)
			delete(l.logs, id)
		}
		return
	}
	if pos < ckPos && (c == nil || !c.hasEpoch || c.epoch != h.epoch) {
		return
	}
	if c == nil {
		c = &chanLog{id: id, next: 1}
		l.logs[id] = c
	}
	if !c.hasEpoch || c.epoch != h.epoch {
		l.clearIndex(c)
		c.epoch, c.hasEpoch = h.epoch, true
		c.next = 1
	}
	if n := len(c.entries); n > 0 && h.first < c.entries[n-1].first+uint64(c.entries[n-1].count) {
		return // not after what is indexed: a duplicate
	}
	c.entries = append(c.entries, entry{
		seg: s, pos: pos, first: h.first, time: h.time,
		size: h.size, count: h.count, dataLen: h.dataLen,
	})
	s.live.Add(1)
	if k, ok := recordKey(rec, h); ok {
		l.rememberKey(c, k, 0, h.time)
	}
	c.bytes += int64(h.dataLen)
	c.next = max(c.next, h.first+uint64(h.count))
	c.lastTime = max(c.lastTime, h.time)
}

// clearIndex forgets every record of c.
func (l *Log) clearIndex(c *chanLog) {
	for _, e := range c.entries[c.head:] {
		e.seg.live.Add(-1)
	}
	clear(c.entries)
	c.entries, c.head, c.bytes = c.entries[:0], 0, 0
	c.skip, c.skipped = 0, 0
}

// closeFiles closes every segment file.
func (l *Log) closeFiles() {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	for _, s := range l.segs {
		s.f.Close()
	}
}

func isNoSpace(err error) bool {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return errors.Is(err, errNoSpace) || errors.Is(err, errQuota)
}
