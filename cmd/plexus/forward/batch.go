package forward

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"time"
)

// batch is one request's worth of lines of one file: the input bytes
// [start, end) of one generation of the file, as logplex-1 frames.
type batch struct {
	src     *source
	gen     int
	key     string // Idempotency-Key
	start   int64
	end     int64
	lines   int
	split   int // pieces of over-long lines among them
	timeCut bool
	first   time.Time // when the first line was added
	body    []byte    // frames, then (sealed) the request body
}

// builder turns lines into RFC 5424 messages in octet-counted frames.
type builder struct {
	cfg    *Config
	pre    []byte // "<190>1 " (time follows)
	post   []byte // " HOST APP PROCID - - "
	ts     []byte // current timestamp
	tsSec  int64
	gz     *gzip.Writer
	gzBuf  bytes.Buffer
	passes func(line []byte) bool
}

func newBuilder(cfg *Config, app string) *builder {
	b := &builder{cfg: cfg, pre: []byte("<190>1 ")}
	b.post = []byte(" " + cfg.Hostname + " " + app + " " + cfg.ProcID + " - - ")
	switch cfg.InputFormat {
	case "rfc5424":
		b.passes = is5424
	case "rfc3164":
		b.passes = is3164
	case "auto":
		b.passes = func(l []byte) bool { return is5424(l) || is3164(l) }
	}
	if cfg.Gzip {
		b.gz, _ = gzip.NewWriterLevel(&b.gzBuf, gzip.BestSpeed)
	}
	return b
}

// stamp sets the timestamp of the lines added next (the read time).
func (b *builder) stamp(now time.Time) {
	us := now.UnixMicro()
	if us == b.tsSec && b.ts != nil {
		return
	}
	b.tsSec = us
	b.ts = now.UTC().AppendFormat(b.ts[:0], "2006-01-02T15:04:05.000000Z07:00")
}

// add appends one message for line to dst.
func (b *builder) add(dst, line []byte) []byte {
	if b.passes != nil && b.passes(line) {
		dst = strconv.AppendInt(dst, int64(len(line)), 10)
		dst = append(dst, ' ')
		return append(dst, line...)
	}
	if len(line) == 0 {
		line = emptyLine
	}
	n := len(b.pre) + len(b.ts) + len(b.post) + len(line)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, ' ')
	dst = append(dst, b.pre...)
	dst = append(dst, b.ts...)
	dst = append(dst, b.post...)
	return append(dst, line...)
}

// An empty line still becomes a message; RFC 5424 has no empty MSG with
// a separating space that every parser accepts, so it carries a dash.
var emptyLine = []byte("-")

// seal turns the frames into the request body (gzipped unless disabled).
func (b *builder) seal(bt *batch) {
	if b.gz == nil {
		return
	}
	b.gzBuf.Reset()
	b.gz.Reset(&b.gzBuf)
	_, _ = b.gz.Write(bt.body)
	_ = b.gz.Close()
	bt.body = append(bt.body[:0], b.gzBuf.Bytes()...)
}

func is5424(l []byte) bool {
	i := priEnd(l)
	return i > 0 && len(l) > i+2 && l[i+1] == '1' && l[i+2] == ' '
}

func is3164(l []byte) bool { return priEnd(l) > 0 && !is5424(l) }

// priEnd returns the index of '>' closing a syslog PRI at the start of l
// (0: none).
func priEnd(l []byte) int {
	if len(l) < 3 || l[0] != '<' {
		return 0
	}
	for i := 1; i < len(l) && i <= 4; i++ {
		switch c := l[i]; {
		case c == '>' && i > 1:
			return i
		case c < '0' || c > '9':
			return 0
		}
	}
	return 0
}
