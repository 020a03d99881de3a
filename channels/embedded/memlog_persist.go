package embedded

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/plexus-router/plexus/channels"
)

// The snapshot file of a Log, in its Dir:
//
//	"PLXLOG" version(1 byte) flags(1 byte: bit 0 = written by Close)
//	per channel: 0x01, id, epoch (uvarint length + bytes), first offset
//	  (uvarint), message count (uvarint), then per message: ingest time as
//	  a varint delta from the previous message's, length (uvarint), data
//	0x00
//	CRC-32C of everything before it (4 bytes, little endian)
const (
	snapshotName    = "log.snapshot"
	snapshotMagic   = "PLXLOG"
	snapshotVersion = 1
	snapshotClean   = 1 // flag: written by Close
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot writes every channel log to Dir now (atomically replacing the
// previous snapshot). Channels restored from a snapshot written by
// Snapshot rather than Close get new epochs, since offsets handed out
// after it would otherwise be handed out twice. Without a Dir it does
// nothing.
func (l *Log) Snapshot() error {
	if l.dir == "" {
		return nil
	}
	if l.isClosed.Load() {
		return channels.ErrClosed
	}
	return l.snapshot(false)
}

func (l *Log) snapshot(clean bool) error {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.mu.RLock()
	ids := make([]string, 0, len(l.logs))
	logs := make([]*chanLog, 0, len(l.logs))
	for id, c := range l.logs {
		ids = append(ids, id)
		logs = append(logs, c)
	}
	l.mu.RUnlock()

	_, err := replaceFile(l.dir, snapshotName, func(f io.Writer) error {
		crc := crc32.New(castagnoli)
		w := bufio.NewWriterSize(io.MultiWriter(f, crc), 256<<10)
		flags := byte(0)
		if clean {
			flags |= snapshotClean
		}
		w.WriteString(snapshotMagic)
		w.WriteByte(snapshotVersion)
		w.WriteByte(flags)
		// Each channel is encoded under its lock into buf, then written
		// without holding it.
		var buf []byte
		for i, c := range logs {
			buf = encodeChanLog(buf[:0], ids[i], c)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		w.WriteByte(0)
		if err := w.Flush(); err != nil {
			return err
		}
		_, err := f.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
		return err
	})
	if err != nil {
		return fmt.Errorf("write log snapshot: %w", err)
	}
	return nil
}

// encodeChanLog appends the snapshot record of c (nothing for a log that
// was never appended to or is deleted).
func encodeChanLog(buf []byte, id string, c *chanLog) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted || c.epoch == "" {
		return buf
	}
	buf = append(buf, 1)
	buf = binary.AppendUvarint(buf, uint64(len(id)))
	buf = append(buf, id...)
	buf = binary.AppendUvarint(buf, uint64(len(c.epoch)))
	buf = append(buf, c.epoch...)
	buf = binary.AppendUvarint(buf, c.first)
	buf = binary.AppendUvarint(buf, c.next-c.first)
	var prev int64
	for _, s := range c.segs {
		for j := s.head; j < len(s.ends); j++ {
			start, end := s.bounds(j)
			buf = binary.AppendVarint(buf, s.times[j]-prev)
			prev = s.times[j]
			buf = binary.AppendUvarint(buf, uint64(end-start))
			buf = append(buf, s.data[start:end]...)
		}
	}
	return buf
}

// restore loads the snapshot in l.dir, if any, and removes it so that a
// crash later cannot bring back a stale log under the same epoch. An
// unreadable snapshot is moved aside and reported by RestoreErr; the
// returned error is for failures to use the directory.
func (l *Log) restore() error {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return fmt.Errorf("open log dir: %w", err)
	}
	path := filepath.Join(l.dir, snapshotName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open log snapshot: %w", err)
	}
	logs, err := l.readSnapshot(f)
	f.Close()
	if err != nil {
		l.restoreErr = fmt.Errorf("restore log snapshot %s: %w", path, err)
		if err := os.Rename(path, path+".corrupt"); err != nil {
			return fmt.Errorf("move aside log snapshot: %w", err)
		}
		return syncDir(l.dir)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove log snapshot: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	l.logs = logs
	return nil
}

// crcReader passes reads through and hashes what was read.
type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	one [1]byte
}

func (r *crcReader) ReadByte() (byte, error) {
	b, err := r.r.ReadByte()
	if err == nil {
		r.one[0] = b
		r.crc.Write(r.one[:])
	}
	return b, err
}

func (r *crcReader) full(p []byte) error {
	if _, err := io.ReadFull(r.r, p); err != nil {
		return err
	}
	r.crc.Write(p)
	return nil
}

var errCorrupt = errors.New("corrupt snapshot")

func (l *Log) readSnapshot(f *os.File) (map[string]*chanLog, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	r := &crcReader{r: bufio.NewReaderSize(f, 256<<10), crc: crc32.New(castagnoli)}
	head := make([]byte, len(snapshotMagic)+2)
	if err := r.full(head); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad magic", errCorrupt)
	}
	if v := head[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("unsupported snapshot version %d", v)
	}
	clean := head[len(snapshotMagic)+1]&snapshotClean != 0

	uvarint := func(bound uint64) (uint64, error) {
		v, err := binary.ReadUvarint(r)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		if v > bound {
			return 0, fmt.Errorf("%w: value %d out of range", errCorrupt, v)
		}
		return v, nil
	}
	str := func(bound uint64) (string, error) {
		n, err := uvarint(bound)
		if err != nil {
			return "", err
		}
		b := make([]byte, n)
		if err := r.full(b); err != nil {
			return "", fmt.Errorf("%w: %w", errCorrupt, err)
		}
		return string(b), nil
	}

	logs := make(map[string]*chanLog)
	var msg []byte
	for {
		tag, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		if tag == 0 {
			break
		}
		if tag != 1 {
			return nil, fmt.Errorf("%w: bad record tag %d", errCorrupt, tag)
		}
		id, err := str(1 << 10)
		if err != nil {
			return nil, err
		}
		epoch, err := str(1 << 8)
		if err != nil {
			return nil, err
		}
		first, err := uvarint(1 << 62)
		if err != nil {
			return nil, err
		}
		count, err := uvarint(uint64(size))
		if err != nil {
			return nil, err
		}
		if _, dup := logs[id]; dup || first == 0 || epoch == "" {
			return nil, fmt.Errorf("%w: bad channel %q", errCorrupt, id)
		}
		c := newChanLog()
		c.first, c.next = first, first
		c.epoch = epoch
		if !clean {
			c.epoch = newEpoch()
		}
		var t int64
		for range count {
			d, err := binary.ReadVarint(r)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errCorrupt, err)
			}
			t += d
			n, err := uvarint(uint64(size))
			if err != nil {
				return nil, err
			}
			if uint64(cap(msg)) < n {
				msg = make([]byte, n)
			}
			msg = msg[:n]
			if err := r.full(msg); err != nil {
				return nil, fmt.Errorf("%w: %w", errCorrupt, err)
			}
			// Retention is applied on the next append or sweep, once
			// the channel's own retention has been set again.
			l.put(c, l.def, msg, t)
		}
		logs[id] = c
	}
	sum := r.crc.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(r.r, tail[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if binary.LittleEndian.Uint32(tail[:]) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	if _, err := r.r.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", errCorrupt)
	}
	return logs, nil
}
