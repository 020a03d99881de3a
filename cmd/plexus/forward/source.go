package forward

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// readSize is how much of a file is read at once.
const readSize = 256 << 10

// source is one followed file (or standard input): a reader goroutine
// (run) that turns lines into batches and a sender goroutine (sendLoop)
// that delivers them in order, one at a time. The queue between them is
// bounded: when sending is slow, reading pauses.
type source struct {
	fw   *Forwarder
	name string   // path at discovery, or "-"
	f    *os.File // nil for stdin
	id   devIno
	st   *fileState // nil for stdin; fields guarded by fw.state.mu
	b    *builder
	q    chan *batch
	wake chan struct{}

	// reader state
	gen       int
	keyFP     string
	pos       int64 // next input byte to read
	lineStart int64 // input offset where carry begins
	emitted   int64 // input offset after the last message put in a batch
	carry     []byte
	cur       *batch
	cutAt     int64 // cut a batch exactly here (resuming a time-cut batch)
	idle      bool  // the last look found no new data
	stdinID   string
	stdin     <-chan []byte
	pending   []byte
	stdinEOF  bool
	lastGrow  time.Time
	done      chan struct{} // closed when reader and sender ended

	gone  atomic.Int64 // Unix ns when no followed name led to the file any more
	size  atomic.Int64 // input size last seen
	acked atomic.Int64 // input offset acknowledged
}

func (s *source) markGone(now time.Time) { s.gone.CompareAndSwap(0, now.UnixNano()) }

func (s *source) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run reads until the context is done, the file is gone and quiet, or
// standard input ends; then it seals what it holds and closes the queue.
func (s *source) run(ctx context.Context) {
	defer close(s.q)
	buf := make([]byte, readSize)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	cfg := s.fw.cfg
	for {
		if ctx.Err() != nil {
			// Stopping: send what was read (a partial line waits for the
			// next start).
			s.sealCur()
			return
		}
		n, eof := s.read(buf)
		if n > 0 {
			if !s.consume(buf[:n]) {
				return
			}
			continue
		}
		if eof || s.finished() {
			s.flushCarry()
			s.sealCur()
			return
		}
		wait := cfg.Poll
		if s.cur != nil {
			left := cfg.BatchAge - time.Since(s.cur.first)
			if left <= 0 {
				if !s.sealCur() {
					return
				}
				continue
			}
			wait = min(wait, left)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-timer.C:
		case c, ok := <-s.stdin:
			if ok {
				s.pending = c
			} else {
				s.stdinEOF = true
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// finished reports whether a file that lost its name has been quiet for
// RotateWait.
func (s *source) finished() bool {
	g := s.gone.Load()
	if g == 0 || s.f == nil {
		return false
	}
	quiet := time.Unix(0, g)
	if s.lastGrow.After(quiet) {
		quiet = s.lastGrow
	}
	return time.Since(quiet) >= s.fw.cfg.RotateWait
}

// read returns how many new input bytes it put in buf; eof is true when
// standard input has ended.
func (s *source) read(buf []byte) (int, bool) {
	if s.f == nil {
		if s.pending == nil && !s.stdinEOF {
			select {
			case c, ok := <-s.stdin:
				if ok {
					s.pending = c
				} else {
					s.stdinEOF = true
				}
			default:
			}
		}
		if s.pending != nil {
			n := copy(buf, s.pending)
			s.pending = s.pending[n:]
			if len(s.pending) == 0 {
				s.pending = nil
			}
			s.pos += int64(n)
			s.size.Store(s.pos)
			return n, false
		}
		return 0, s.stdinEOF
	}
	fi, err := s.f.Stat()
	if err != nil {
		return 0, false
	}
	size := fi.Size()
	s.size.Store(size)
	if size < s.pos || (s.idle && size > s.pos && s.prefixChanged()) {
		s.truncated()
		return 0, false
	}
	if size == s.pos {
		s.idle = true
		return 0, false
	}
	s.idle = false
	s.lastGrow = time.Now()
	n, err := s.f.ReadAt(buf[:min(int64(len(buf)), size-s.pos)], s.pos)
	if n > 0 {
		s.pos += int64(n)
		s.updateFP()
	}
	_ = err
	return n, false
}

// prefixChanged reports whether the file's first bytes are no longer the
// ones fingerprinted: truncated and written again past our position.
func (s *source) prefixChanged() bool {
	s.fw.state.mu.Lock()
	fp, n := s.st.FP, s.st.FPLen
	s.fw.state.mu.Unlock()
	if n == 0 {
		return false
	}
	h, ok := prefixHash(s.f, n)
	return !ok || h != fp
}

// updateFP extends the check fingerprint while the file is short of fpMax.
func (s *source) updateFP() {
	s.fw.state.mu.Lock()
	defer s.fw.state.mu.Unlock()
	if s.st.Gen != s.gen || s.st.FPLen >= fpMax || s.pos <= int64(s.st.FPLen) {
		return
	}
	n := int(min(s.pos, fpMax))
	if h, ok := prefixHash(s.f, n); ok {
		s.st.FP, s.st.FPLen = h, n
	}
}

// truncated starts a new generation of the file at offset 0 (copytruncate
// or truncation in place).
func (s *source) truncated() {
	s.flushCarry()
	s.sealCur()
	s.fw.m.truncations.Add(1)
	s.fw.logf("%s: truncated; reading it again from the start", s.name)
	s.gen++
	s.pos, s.lineStart, s.emitted, s.cutAt, s.keyFP = 0, 0, 0, 0, ""
	s.idle = false
	s.fw.state.mu.Lock()
	s.st.Gen, s.st.KeyFP, s.st.FP, s.st.FPLen, s.st.Acked, s.st.Sent = s.gen, "", "", 0, 0, 0
	s.fw.state.dirty = true
	s.fw.state.mu.Unlock()
	s.acked.Store(0)
}

// consume turns data (the input bytes after s.pos-len(data)) into
// messages. False when the forwarder stopped hard.
func (s *source) consume(data []byte) bool {
	s.b.stamp(time.Now())
	max := s.fw.cfg.MaxLine
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.carry = append(s.carry, data...)
			for len(s.carry) > max {
				if !s.emit(s.carry[:max], s.lineStart+int64(max), true) {
					return false
				}
				s.lineStart += int64(max)
				n := copy(s.carry, s.carry[max:])
				s.carry = s.carry[:n]
			}
			return true
		}
		line := data[:i]
		data = data[i+1:]
		if len(s.carry) > 0 {
			s.carry = append(s.carry, line...)
			line = s.carry
		}
		end := s.lineStart + int64(len(line)) + 1
		for len(line) > max {
			if !s.emit(line[:max], s.lineStart+int64(max), true) {
				return false
			}
			s.lineStart += int64(max)
			line = line[max:]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if !s.emit(line, end, false) {
			return false
		}
		s.lineStart = end
		s.carry = s.carry[:0]
	}
	return true
}

// flushCarry emits a last line without newline (a file that will not grow
// any more).
func (s *source) flushCarry() {
	if len(s.carry) > 0 {
		s.emit(s.carry, s.lineStart+int64(len(s.carry)), false)
		s.lineStart += int64(len(s.carry))
		s.carry = s.carry[:0]
	}
}

// emit adds one message that ends at input offset end to the current
// batch, and seals the batch when it is full. Batch bounds depend only on
// where the batch starts and on the input, so a batch sent again after a
// restart is the same batch with the same key.
func (s *source) emit(line []byte, end int64, piece bool) bool {
	cfg := s.fw.cfg
	if s.cur == nil {
		s.cur = &batch{src: s, gen: s.gen, start: s.emitted, first: time.Now(), body: s.fw.getBody()}
	}
	b := s.cur
	b.body = s.b.add(b.body, line)
	b.lines++
	if piece {
		b.split++
	}
	b.end = end
	s.emitted = end
	switch {
	case s.cutAt > 0 && end >= s.cutAt:
		s.cutAt = 0
		b.timeCut = true // its end is in the state already; keep it there
		return s.push(b)
	case b.lines >= cfg.BatchLines || b.end-b.start >= int64(cfg.BatchBytes):
		return s.push(b)
	}
	return true
}

// sealCur seals and queues the current batch as a time cut.
func (s *source) sealCur() bool {
	if s.cur == nil {
		return true
	}
	s.cur.timeCut = true
	return s.push(s.cur)
}

// push seals b and queues it: it waits while the queue is full (or, with
// -drop, drops it). False when the forwarder stopped hard.
func (s *source) push(b *batch) bool {
	s.cur = nil
	s.b.seal(b)
	b.key = s.key(b)
	s.fw.m.linesRead.Add(int64(b.lines))
	s.fw.m.split.Add(int64(b.split))
	if s.fw.cfg.Drop {
		select {
		case s.q <- b:
		default:
			s.fw.m.dropped.Add(int64(b.lines))
		}
		return true
	}
	select {
	case s.q <- b:
		return true
	case <-s.fw.hardStop:
		return false
	}
}

// key returns b's idempotency key: host, file identity and generation,
// starting offset.
func (s *source) key(b *batch) string {
	host := s.fw.cfg.Hostname
	if s.f == nil {
		return host + "/" + s.stdinID + "/" + strconv.FormatInt(b.start, 10)
	}
	if s.keyFP == "" {
		s.fw.state.mu.Lock()
		if s.st.Gen == s.gen && s.st.KeyFP != "" {
			s.keyFP = s.st.KeyFP
		}
		s.fw.state.mu.Unlock()
	}
	if s.keyFP == "" {
		n := int(min(b.end, keyFPMax))
		h, ok := prefixHash(s.f, n)
		if !ok {
			h = "0"
		}
		s.keyFP = h
		s.fw.state.mu.Lock()
		if s.st.Gen == s.gen {
			s.st.KeyFP = h
			s.fw.state.dirty = true
		}
		s.fw.state.mu.Unlock()
	}
	return fmt.Sprintf("%s/%x:%x:%d:%s/%d", host, s.id.dev, s.id.ino, b.gen, s.keyFP, b.start)
}

// readStdin feeds standard input to the reader in chunks. It ends when
// standard input does (a blocked read cannot be interrupted: the process
// exit ends it then).
func readStdin(r io.Reader, out chan<- []byte) {
	defer close(out)
	for {
		buf := make([]byte, 64<<10)
		n, err := r.Read(buf)
		if n > 0 {
			out <- buf[:n]
		}
		if err != nil {
			return
		}
	}
}
