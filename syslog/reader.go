package syslog

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// FrameErrorKind says why a frame was rejected.
type FrameErrorKind int

const (
	// Oversize: the frame was longer than the Reader's maxFrame; it was
	// discarded.
	Oversize FrameErrorKind = iota + 1
	// Malformed: the frame could not be read, e.g. an octet-counted frame
	// truncated by the end of the stream.
	Malformed
)

func (k FrameErrorKind) String() string {
	switch k {
	case Oversize:
		return "oversize"
	case Malformed:
		return "malformed"
	}
	return "FrameErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// FrameError reports a rejected frame. It is not fatal: the caller should
// keep calling [Reader.Next].
type FrameError struct {
	Kind FrameErrorKind
}

func (e *FrameError) Error() string { return "syslog: " + e.Kind.String() + " frame" }

// Preallocated so that rejecting a frame does not allocate. Callers must not
// modify them.
var (
	errOversize  = &FrameError{Kind: Oversize}
	errMalformed = &FrameError{Kind: Malformed}
)

// readBufSize is the Reader's initial buffer and the slack it keeps above
// maxFrame.
const readBufSize = 64 << 10

// busyBufSize is what the buffer grows to while reads fill it (the sender
// is ahead): fewer, larger reads, and a flush (one append to the channel
// logs) per 256 KiB rather than per 64 KiB. After shrinkAfter reads of
// less than an eighth of it, an empty buffer shrinks back, so idle
// connections hold 64 KiB.
const (
	busyBufSize = 256 << 10
	shrinkAfter = 64
)

// Reader splits a syslog byte stream (TCP, TLS) into frames, detecting per
// frame whether it is octet counted (RFC 6587, "LEN SP MSG") or newline
// terminated; see the package documentation. It reads through one internal
// buffer (64 KiB; 256 KiB while the sender keeps it full; grown to at most
// maxFrame+64 KiB for a long frame) and does not allocate per frame.
type Reader struct {
	rd       io.Reader
	buf      []byte
	r, w     int  // buf[r:w] is unread data
	grow     bool // the last read filled the buffer: grow it before the next
	small    int  // consecutive reads of less than an eighth of the buffer
	max      int  // maxFrame
	maxBuf   int
	err      error // sticky error from rd
	skip     int   // bytes of an oversize octet frame still to discard
	skipLine bool  // discarding an overlong line up to its '\n'
	scanned  int   // bytes after r known to hold no '\n'

	// beforeRead, if set, is called before every read from rd that may
	// block; an error ends the stream (it is returned by Next). The server
	// uses it to flush the sink and to set read deadlines.
	beforeRead func() error
}

// NewReader returns a Reader of frames of at most maxFrame bytes from r.
// maxFrame must be positive.
func NewReader(r io.Reader, maxFrame int) *Reader {
	if maxFrame < 1 {
		maxFrame = 1
	}
	maxBuf := max(maxFrame+maxLenDigits+2+readBufSize, busyBufSize)
	size := readBufSize
	if size > maxBuf {
		size = maxBuf
	}
	return &Reader{rd: r, buf: make([]byte, size), max: maxFrame, maxBuf: maxBuf}
}

// Next returns the next frame. The frame is valid until the next call. A
// *FrameError (Kind Oversize or Malformed) is not fatal: call Next again. Any
// other error (io.EOF at the end of the stream, or the underlying reader's
// error) ends the stream and is returned again by later calls. At io.EOF, a
// final line without a line feed is returned as a frame.
func (r *Reader) Next() ([]byte, error) {
	for {
		if r.skip > 0 {
			n := r.w - r.r
			if n > r.skip {
				n = r.skip
			}
			r.r += n
			r.skip -= n
			if r.skip == 0 {
				return nil, errOversize
			}
			if err := r.fill(); err != nil {
				r.skip = 0
				if err == io.EOF {
					return nil, errMalformed
				}
				return nil, err
			}
			continue
		}
		if r.skipLine {
			if i := bytes.IndexByte(r.buf[r.r:r.w], '\n'); i >= 0 {
				r.r += i + 1
				r.skipLine = false
				return nil, errOversize
			}
			r.r = r.w
			if err := r.fill(); err != nil {
				r.skipLine = false
				if err == io.EOF {
					return nil, errOversize
				}
				return nil, err
			}
			continue
		}
		for r.r < r.w && (r.buf[r.r] == '\n' || r.buf[r.r] == '\r') {
			r.r++
			r.scanned = 0
		}
		if r.r == r.w {
			if err := r.fill(); err != nil {
				return nil, err
			}
			continue
		}
		b := r.buf[r.r:r.w]
		if n, h, more, ok := octetHeader(b); ok {
			if n > r.max {
				r.r += h
				r.skip = n
				r.scanned = 0
				continue
			}
			if len(b) >= h+n {
				r.r += h + n
				r.scanned = 0
				return b[h : h+n], nil
			}
			r.reserve(h + n)
			if err := r.fill(); err != nil {
				r.r = r.w
				r.scanned = 0
				if err == io.EOF {
					return nil, errMalformed
				}
				return nil, err
			}
			continue
		} else if more && r.err == nil {
			if err := r.fill(); err != nil && err != io.EOF {
				return nil, err
			}
			continue
		}
		// Newline framing.
		if i := bytes.IndexByte(b[r.scanned:], '\n'); i >= 0 {
			line := b[:r.scanned+i]
			r.r += r.scanned + i + 1
			r.scanned = 0
			return r.line(line)
		}
		r.scanned = len(b)
		if len(b) > r.max+1 {
			// No '\n' within maxFrame+2 bytes: too long even with "\r\n".
			r.r = r.w
			r.scanned = 0
			r.skipLine = true
			continue
		}
		r.reserve(r.max + 2)
		if err := r.fill(); err != nil {
			if err == io.EOF {
				r.r = r.w
				r.scanned = 0
				return r.line(b)
			}
			return nil, err
		}
	}
}

// line returns a newline-framed frame without its trailing '\r'.
func (r *Reader) line(b []byte) ([]byte, error) {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	if len(b) > r.max {
		return nil, errOversize
	}
	return b, nil
}

// reserve makes room for n unread bytes (n <= maxBuf) starting at r.
func (r *Reader) reserve(n int) {
	if len(r.buf)-r.r >= n {
		return
	}
	if len(r.buf) >= n {
		r.compact()
		return
	}
	size := 2 * len(r.buf)
	if size < n {
		size = n
	}
	if size > r.maxBuf {
		size = r.maxBuf
	}
	buf := make([]byte, size)
	r.w = copy(buf, r.buf[r.r:r.w])
	r.r = 0
	r.buf = buf
}

// resize gives the buffer size bytes (at least what it holds unread).
func (r *Reader) resize(size int) {
	if size <= len(r.buf) || size < r.w-r.r {
		return
	}
	buf := make([]byte, size)
	r.w = copy(buf, r.buf[r.r:r.w])
	r.r = 0
	r.buf = buf
}

func (r *Reader) compact() {
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
}

var errNegativeRead = errors.New("syslog: reader returned negative count from Read")

// fill reads more data into the buffer. It returns the sticky error once
// everything before it was consumed.
func (r *Reader) fill() error {
	if r.err != nil {
		return r.err
	}
	if r.r == r.w {
		r.r, r.w = 0, 0
		if r.small >= shrinkAfter && len(r.buf) > readBufSize {
			r.buf, r.small = make([]byte, min(readBufSize, r.maxBuf)), 0
		}
	}
	if r.grow {
		r.grow = false
		r.resize(min(busyBufSize, r.maxBuf))
	}
	if r.r < r.w && (r.w == len(r.buf) || len(r.buf)-r.w < 512) {
		r.compact()
		if r.w == len(r.buf) {
			// Cannot happen: frames and headers always fit. Guard anyway.
			r.reserve(len(r.buf) + 1)
			if r.w == len(r.buf) {
				r.err = errors.New("syslog: frame buffer full")
				return r.err
			}
		}
	}
	if r.beforeRead != nil {
		if err := r.beforeRead(); err != nil {
			r.err = err
			return err
		}
	}
	for i := 0; i < 100; i++ {
		free := len(r.buf) - r.w
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > free {
			r.err = errNegativeRead
			return r.err
		}
		r.w += n
		switch {
		case n == free && len(r.buf) < busyBufSize:
			r.grow = true
		case n > 0 && n < len(r.buf)/8:
			r.small++
		case n > 0:
			r.small = 0
		}
		if err != nil {
			r.err = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	r.err = io.ErrNoProgress
	return r.err
}
