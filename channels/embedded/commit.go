package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plexus-router/plexus/channels"
)

var (
	errNoSpace error = syscall.ENOSPC
	errQuota   error = syscall.EDQUOT
)

// committer runs group commits: at least every SyncInterval while there
// are appends, and back to back while someone waits for one.
func (l *Log) committer() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			l.commit()
			return
		case <-l.commitReq:
		case <-t.C:
		}
		l.commit()
	}
}

// commit syncs what was written since the last commit and makes it
// visible to readers.
func (l *Log) commit() {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	l.wmu.Lock()
	if l.written == l.committed && len(l.dirty) == 0 {
		l.wmu.Unlock()
		return
	}
	target := l.written
	active := l.active
	// Rolled segments stay listed as unsynced until their sync is done,
	// so deleteDeadSegments does not close them under the sync.
	files := append([]*segFile(nil), l.unsynced...)
	newFile := l.newFile
	l.newFile = false
	list := l.dirty
	l.dirty = nil
	nexts := make([]uint64, len(list))
	for i, c := range list {
		c.dirty = false
		nexts[i] = c.next
	}
	l.wmu.Unlock()

	var err error
	if l.cfg.Sync != SyncNone {
		start := time.Now()
		for _, s := range append(files, active) {
			if e := unix.Fdatasync(int(s.f.Fd())); e != nil && err == nil {
				err = fmt.Errorf("sync %s: %w", s.path, e)
			}
		}
		if err == nil && newFile {
			err = syncDir(l.cfg.Dir)
		}
		l.metrics.fsync.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		// Not durable: keep the channels dirty and the segments unsynced
		// so the next commit tries again; readers keep waiting.
		l.metrics.syncErrors.Inc()
		l.logger.Error().Err(err).Msg("channel log sync failed; retrying")
		l.wmu.Lock()
		l.newFile = l.newFile || newFile
		for _, c := range list {
			if !c.dirty {
				c.dirty = true
				l.dirty = append(l.dirty, c)
			}
		}
		l.wmu.Unlock()
		return
	}
	l.metrics.commits.Inc()
	if len(files) > 0 {
		l.wmu.Lock()
		n := copy(l.unsynced, l.unsynced[len(files):])
		clear(l.unsynced[n:])
		l.unsynced = l.unsynced[:n]
		l.wmu.Unlock()
	}
	// Channels first, so that whoever waited for the position finds its
	// channel's messages visible.
	for i, c := range list {
		c.mu.Lock()
		l.setDurable(c, nexts[i])
		c.mu.Unlock()
	}
	l.committed = target
	l.syncMu.Lock()
	l.synced = max(l.synced, target)
	close(l.syncedCh)
	l.syncedCh = make(chan struct{})
	l.syncMu.Unlock()
}

// janitorEvery is how often age retention, segment deletion, the disk
// bound and checkpoints are looked at.
const janitorEvery = 250 * time.Millisecond

// janitor applies age retention to channels that receive no appends,
// deletes segment files nothing retains, enforces MaxDisk and writes the
// channel checkpoint when needed.
func (l *Log) janitor() {
	defer l.wg.Done()
	t := time.NewTicker(janitorEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.sweep()
	}
}

// sweep runs one round of the janitor (rounds never overlap: a test's
// SweepNow waits for the janitor's round in progress).
func (l *Log) sweep() {
	l.sweepMu.Lock()
	defer l.sweepMu.Unlock()
	for _, c := range l.list(nil) {
		c.mu.Lock()
		if ret := l.retention(c); ret.Age > 0 && !c.deleted {
			l.trim(c, ret)
		}
		c.mu.Unlock()
	}
	l.wmu.Lock()
	for _, c := range l.list(nil) {
		l.expireKeys(c)
	}
	l.wmu.Unlock()
	if l.cfg.MaxDisk > 0 {
		l.enforceMaxDisk()
	}
	l.deleteDeadSegments()
	if l.ckptReq.Swap(false) {
		if _, err := l.writeCheckpoint(); err != nil {
			l.ckptReq.Store(true)
			l.logger.Error().Err(err).Msg("write channel checkpoint")
		}
	}
	l.updateGauges()
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

// enforceMaxDisk evicts the oldest segments while the files exceed
// MaxDisk: every channel's records in them leave its index (readers are
// told what they missed, with exact counts).
func (l *Log) enforceMaxDisk() {
	l.deleteDeadSegments()
	for {
		l.segMu.RLock()
		var total int64
		for _, s := range l.segs {
			total += s.size.Load()
		}
		var oldest *segFile
		if len(l.segs) > 1 {
			oldest = l.segs[0]
		}
		l.segMu.RUnlock()
		if oldest == nil || total <= l.cfg.MaxDisk || oldest.live.Load() == 0 {
			return // (a dead oldest segment is deleted as soon as it can be)
		}
		end := oldest.base + oldest.size.Load()
		var n uint64
		for _, c := range l.list(nil) {
			c.mu.Lock()
			for c.head < len(c.entries) && c.entries[c.head].pos < end {
				n += uint64(c.entries[c.head].count)
				l.dropHead(c)
			}
			c.mu.Unlock()
		}
		if n > 0 {
			l.evicted.Add(n)
			l.metrics.evictedMaxDisk.Add(float64(n))
			l.logger.Warn().Int64("max_disk", l.cfg.MaxDisk).Uint64("messages", n).Str("file", oldest.path).
				Msg("disk bound reached: oldest segment evicted")
		}
		l.deleteDeadSegments()
	}
}

// deleteDeadSegments removes sealed segment files that no channel retains
// and no reader is reading. A checkpoint written first records the channel
// states, so what the files said (deletions, epochs) is not forgotten; only
// files wholly before its position go.
func (l *Log) deleteDeadSegments() {
	if !l.anyDeadSegment() {
		return
	}
	ckPos, err := l.writeCheckpoint()
	if err != nil {
		l.logger.Error().Err(err).Msg("write channel checkpoint; segments kept")
		return
	}
	// Take the files out of the list under the locks, and close and remove
	// them after: removing a file can take milliseconds (a filesystem
	// mounted with discard trims its blocks then), and a segment roll
	// (under the write lock) waits for segMu. Under the write lock the
	// active segment and the rolled ones not yet synced are known: they
	// are never removed, even when nothing in them is retained.
	var dead []*segFile
	l.wmu.Lock()
	l.segMu.Lock()
	keep := l.segs[:0]
	for _, s := range l.segs {
		if s.base+s.size.Load() <= ckPos && l.deadLocked(s) {
			s.gone.Store(true)
			dead = append(dead, s)
			continue
		}
		keep = append(keep, s)
	}
	clear(l.segs[len(keep):])
	l.segs = keep
	l.segMu.Unlock()
	l.wmu.Unlock()
	for _, s := range dead {
		s.f.Close()
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.logger.Error().Err(err).Str("file", s.path).Msg("remove segment")
		}
	}
}

// anyDeadSegment reports whether a segment could be removed now (not
// while a rolled segment waits for its sync).
func (l *Log) anyDeadSegment() bool {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if len(l.unsynced) > 0 {
		return false
	}
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	for _, s := range l.segs {
		if l.deadLocked(s) {
			return true
		}
	}
	return false
}

// deadLocked reports whether s is sealed, synced, retains nothing and is
// not being read (wmu and segMu held).
func (l *Log) deadLocked(s *segFile) bool {
	return s != l.active && !slices.Contains(l.unsynced, s) && s.live.Load() == 0 && s.refs.Load() == 0
}

// checkpoint is the channels' state at a log position: what the segment
// files before it said about the channels that still exist.
type checkpoint struct {
	Pos      int64          `json:"pos"`
	Channels []channelState `json:"channels"`
}

type channelState struct {
	ID        string          `json:"id"`
	Epoch     string          `json:"epoch,omitempty"`
	Next      uint64          `json:"next"`
	LastTime  int64           `json:"last_time,omitempty"`
	Retention *retentionState `json:"retention,omitempty"`
	Keys      []keyState      `json:"keys,omitempty"` // idempotency keys (dedup.go)
}

type retentionState struct {
	Count int   `json:"count,omitempty"`
	Bytes int64 `json:"bytes,omitempty"`
	Age   int64 `json:"age_ns,omitempty"`
	Keep  int   `json:"keep,omitempty"`
}

func (r retentionState) retention() channels.Retention {
	return channels.Retention{Count: r.Count, Bytes: r.Bytes, Age: time.Duration(r.Age), Keep: r.Keep}
}

const checkpointFile = "channels.checkpoint"

// writeCheckpoint records every channel's state at the current end of the
// log (appends wait meanwhile; the file is written after).
func (l *Log) writeCheckpoint() (pos int64, err error) {
	l.wmu.Lock()
	ck := checkpoint{Pos: l.end}
	l.mu.RLock()
	ck.Channels = make([]channelState, 0, len(l.logs))
	for _, c := range l.logs {
		c.mu.Lock()
		if c.hasEpoch || c.custom {
			cs := channelState{ID: c.id, Next: c.next, LastTime: c.lastTime}
			if c.hasEpoch {
				cs.Epoch = epochString(c.epoch)
			}
			if c.custom {
				cs.Retention = &retentionState{Count: c.ret.Count, Bytes: c.ret.Bytes, Age: int64(c.ret.Age), Keep: c.ret.Keep}
			}
			l.expireKeys(c)
			cs.Keys = c.keyStates()
			ck.Channels = append(ck.Channels, cs)
		}
		c.mu.Unlock()
	}
	l.mu.RUnlock()
	l.wmu.Unlock()
	b, err := json.Marshal(ck)
	if err != nil {
		return 0, err
	}
	_, err = replaceFile(l.cfg.Dir, checkpointFile, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	return ck.Pos, err
}

// readCheckpoint reads the checkpoint (none: the zero value).
func (l *Log) readCheckpoint() (checkpoint, error) {
	var ck checkpoint
	b, err := os.ReadFile(filepath.Join(l.cfg.Dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ck, nil
	}
	if err != nil {
		return ck, err
	}
	if err := json.Unmarshal(b, &ck); err != nil {
		return checkpoint{}, fmt.Errorf("channel checkpoint: %w", err)
	}
	return ck, nil
}
