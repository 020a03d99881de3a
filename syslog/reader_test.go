package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// item is one result of Reader.Next: a frame or a non-fatal error kind.
type item struct {
	frame string
	kind  FrameErrorKind
}

func (it item) String() string {
	if it.kind != 0 {
		return "<" + it.kind.String() + ">"
	}
	return fmt.Sprintf("%q", it.frame)
}

// readAll drains r and returns the frames and frame errors until a fatal error.
func readAll(t testing.TB, r *Reader) ([]item, error) {
	var items []item
	for i := 0; ; i++ {
		if i > 1<<20 {
			t.Fatal("Reader does not end")
		}
		b, err := r.Next()
		var fe *FrameError
		switch {
		case err == nil:
			items = append(items, item{frame: string(b)})
		case errors.As(err, &fe):
			items = append(items, item{kind: fe.Kind})
		default:
			return items, err
		}
	}
}

func frames(items ...any) []item {
	var out []item
	for _, it := range items {
		switch v := it.(type) {
		case string:
			out = append(out, item{frame: v})
		case FrameErrorKind:
			out = append(out, item{kind: v})
		}
	}
	return out
}

func sameItems(a, b []item) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 20)
	tests := []struct {
		name, in string
		max      int
		want     []item
	}{
		{"octet", "5 hello5 world", 100, frames("hello", "world")},
		{"octet with newlines between", "5 hello\n\r\n5 world\n", 100, frames("hello", "world")},
		{"octet containing newline", "6 a\nb\r\nc", 100, frames("a\nb\r\nc")},
		{"lines", "hello\nworld\r\n", 100, frames("hello", "world")},
		{"lines blank", "\n\n\r\nhello\n\n\nworld\n\n", 100, frames("hello", "world")},
		{"line final without newline", "hello\nworld", 100, frames("hello", "world")},
		{"line final cr", "hello\r", 100, frames("hello")},
		{"mixed", "5 hello<13>tag: x\n3 abc<1>1 a\n", 100, frames("hello", "<13>tag: x", "abc", "<1>1 a")},
		{"digits without space", "123abc\n5 hello", 100, frames("123abc", "hello")},
		{"ten digits", "1234567890 x\n", 100, frames("1234567890 x")},
		{"zero prefix", "05 hello\n", 100, frames("05 hello")},
		{"digits at eof", "12", 100, frames("12")},
		{"octet truncated", "10 hello", 100, frames(Malformed)},
		{"octet truncated after frame", "5 hello10 abc", 100, frames("hello", Malformed)},
		{"octet oversize", "21 " + long + "x5 hello", 20, frames(Oversize, "hello")},
		{"octet max", "20 " + long + "5 hello", 20, frames(long, "hello")},
		{"octet oversize truncated", "21 " + long, 20, frames(Malformed)},
		{"octet nine digits oversize", "999999999 abc", 20, frames(Malformed)},
		{"line oversize", long + "x\nhello\n", 20, frames(Oversize, "hello")},
		{"line max", long + "\r\nhello\n", 20, frames(long, "hello")},
		{"line max plus cr", long + "x\r\nhello\n", 20, frames(Oversize, "hello")},
		{"line oversize at eof", long + long, 20, frames(Oversize)},
		{"line oversize long", strings.Repeat(long, 1000) + "\nhello", 20, frames(Oversize, "hello")},
		{"empty", "", 100, nil},
		{"only newlines", "\n\r\n\r", 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []struct {
				name string
				r    func(io.Reader) io.Reader
			}{
				{"whole", func(r io.Reader) io.Reader { return r }},
				{"onebyte", iotest.OneByteReader},
				{"dataerr", iotest.DataErrReader},
				{"half", iotest.HalfReader},
			} {
				got, err := readAll(t, NewReader(wrap.r(strings.NewReader(tt.in)), tt.max))
				if err != io.EOF {
					t.Errorf("%s: err = %v, want io.EOF", wrap.name, err)
				}
				if !sameItems(got, tt.want) {
					t.Errorf("%s: Reader(%q) = %v, want %v", wrap.name, tt.in, got, tt.want)
				}
			}
		})
	}
}

func TestReaderError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("5 hello5 wor"), iotest.ErrReader(boom)), 100)
	got, err := readAll(t, r)
	if err != boom || !sameItems(got, frames("hello")) {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := r.Next(); err != boom {
		t.Errorf("error not sticky: %v", err)
	}
}

// splitReader returns the chunks of data one per Read.
type splitReader struct{ chunks [][]byte }

func (s *splitReader) Read(p []byte) (int, error) {
	for len(s.chunks) > 0 && len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	s.chunks[0] = s.chunks[0][n:]
	return n, nil
}

// checkSplit checks that data split at every position (or in random chunks
// for long inputs) gives the same frames as data read at once.
func checkSplit(t testing.TB, data []byte, max int, rng *rand.Rand) {
	want, err := readAll(t, NewReader(bytes.NewReader(data), max))
	if err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	for _, it := range want {
		if len(it.frame) > max {
			t.Fatalf("frame of %d bytes > max %d", len(it.frame), max)
		}
	}
	try := func(chunks [][]byte) {
		got, err := readAll(t, NewReader(&splitReader{chunks: chunks}, max))
		if err != io.EOF || !sameItems(got, want) {
			t.Fatalf("split %q: got %v, %v, want %v", chunks, got, err, want)
		}
	}
	if len(data) <= 300 {
		for i := 0; i <= len(data); i++ {
			try([][]byte{data[:i:i], data[i:]})
		}
	}
	for k := 0; k < 20; k++ {
		var chunks [][]byte
		for rest := data; len(rest) > 0; {
			n := rng.IntN(len(rest)) + 1
			if rng.IntN(2) == 0 {
				n = rng.IntN(min(len(rest), 8)) + 1
			}
			chunks = append(chunks, rest[:n:n])
			rest = rest[n:]
		}
		try(chunks)
	}
}

func TestReaderSplitAnywhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := []string{
		"5 hello<13>tag: x\n3 abc<1>1 a\n\r\n12 abcdefghijkl",
		"118 <134>1 2012-12-10T03:00:48.123456Z erlang t.feff49f1-4d55-4c9e-aee1-2d2b10e69b42 console.1 - - Logsplat test message 1\n",
		"21 " + strings.Repeat("y", 21) + "line\n" + strings.Repeat("z", 30) + "\n7 1234567",
		"\r\n\r\n9 ab\ncd\r\nef\n1a\n12",
		"100 short",
	}
	for _, in := range inputs {
		checkSplit(t, []byte(in), 20, rng)
	}
	// Many frames, several buffer refills, growing buffer.
	var b bytes.Buffer
	for i := 0; i < 2000; i++ {
		msg := strings.Repeat(string(rune('a'+i%26)), i%300)
		switch i % 4 {
		case 0, 1:
			fmt.Fprintf(&b, "%d %s", len(msg)+1, msg+"!")
		case 2:
			b.WriteString(msg + "!\n")
		case 3:
			b.WriteString(msg + "!\r\n")
		}
	}
	checkSplit(t, b.Bytes(), 250, rng)
	big := strings.Repeat("q", 100<<10)
	checkSplit(t, []byte(fmt.Sprintf("%d %s%s\n5 hello", len(big), big, big)), 100<<10, rng)
}

func TestReaderMemoryBounded(t *testing.T) {
	const max = 1000
	r := NewReader(io.MultiReader(
		strings.NewReader("999999999 "), io.LimitReader(zeroReader{}, 999999999),
		strings.NewReader("5 hello"),
		io.LimitReader(zeroReader{}, 10<<20), strings.NewReader("\nworld\n"),
	), max)
	got, err := readAll(t, r)
	if err != io.EOF || !sameItems(got, frames(Oversize, "hello", Oversize, "world")) {
		t.Errorf("got %v, %v", got, err)
	}
	if len(r.buf) > busyBufSize {
		t.Errorf("buffer grew to %d", len(r.buf))
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// loopReader returns data over and over.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

func octetStream(n int) []byte {
	msg := "<134>1 2012-12-10T03:00:48.123456Z erlang t.feff49f1-4d55-4c9e-aee1-2d2b10e69b42 console.1 - - " +
		strings.Repeat("x", 200-99)
	var b []byte
	for i := 0; i < n; i++ {
		b = fmt.Appendf(b, "%d %s", len(msg), msg)
	}
	return b
}

func TestReaderNoAllocs(t *testing.T) {
	r := NewReader(&loopReader{data: octetStream(7)}, 10240)
	for i := 0; i < 1000; i++ {
		r.Next()
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Reader.Next allocates %v times", allocs)
	}
}

func BenchmarkReader(b *testing.B) {
	data := octetStream(100)
	r := NewReader(&loopReader{data: data}, 10240)
	b.ReportAllocs()
	b.SetBytes(int64(len(data) / 100))
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// seqSource writes an endless octet-counted stream of numbered frames,
// filling every read (busy) or one frame per read (trickle).
type seqSource struct {
	trickle bool
	next    int
	pending []byte
	reads   int
}

func (s *seqSource) Read(p []byte) (int, error) {
	s.reads++
	n := 0
	for n < len(p) {
		if len(s.pending) == 0 {
			msg := fmt.Sprintf("<134>1 - h app %d - - %s", s.next, strings.Repeat("x", 150))
			s.pending = fmt.Appendf(nil, "%d %s", len(msg), msg)
			s.next++
		}
		c := copy(p[n:], s.pending)
		s.pending = s.pending[c:]
		n += c
		if s.trickle && len(s.pending) == 0 {
			break
		}
	}
	return n, nil
}

// TestReaderBufferFollowsTheSender: the buffer grows to busyBufSize while
// reads fill it and shrinks back once the sender slows down, and no frame
// is lost or cut across the resizes.
func TestReaderBufferFollowsTheSender(t *testing.T) {
	src := &seqSource{}
	r := NewReader(src, 64<<10)
	want := 0
	check := func(reads int) {
		t.Helper()
		for stop := src.reads + reads; src.reads < stop; {
			f, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			if _, err := fmt.Sscanf(string(f), "<134>1 - h app %d ", &got); err != nil || got != want {
				t.Fatalf("frame %q, want number %d", f, want)
			}
			want++
		}
	}
	check(5)
	if len(r.buf) != busyBufSize {
		t.Fatalf("buffer %d bytes while the sender fills it, want %d", len(r.buf), busyBufSize)
	}
	src.trickle = true
	check(shrinkAfter + 5)
	if len(r.buf) != readBufSize {
		t.Fatalf("buffer %d bytes after %d small reads, want %d", len(r.buf), shrinkAfter+5, readBufSize)
	}
	src.trickle = false
	check(5)
	if len(r.buf) != busyBufSize {
		t.Fatalf("buffer %d bytes when the sender is busy again, want %d", len(r.buf), busyBufSize)
	}
}
