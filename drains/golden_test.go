package drains

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const goldenToken = "d.fc6b856b-3332-4546-93de-7d0ee272c3bd"

// goldenRead is a fixed Read result: two messages lost to retention, four
// records of which one is not syslog, one has structured data and a
// trailing newline.
func goldenRead() (channels.Cursor, *channels.Records, channels.ReadResult) {
	var recs channels.Records
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	recs.Add(3, t0, []byte("<134>1 2012-12-10T03:00:48.123456Z erlang app console.1 - - Logsplat test message 1"))
	recs.Add(4, t0, []byte("<13>1 2012-12-10T03:00:49Z myhost app web.2 ID47 [meta sequenceId=\"518\"] line with newline\n"))
	recs.Add(5, t0, []byte("not syslog at all"))
	recs.Add(6, t0, []byte(`<190>1 2012-12-10T03:00:50.5+01:00 h heroku router - - at=info method=GET path="/"`))
	res := channels.ReadResult{
		Epoch:       "e1",
		Next:        channels.Cursor{Epoch: "e1", Offset: 7},
		Missed:      2,
		MissedSince: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	return channels.Cursor{Epoch: "e1", Offset: 1}, &recs, res
}

var (
	goldenNow     = time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	goldenPending = time.Date(2023, 12, 31, 23, 0, 0, 0, time.UTC)
)

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %q\nwant: %q", name, got, want)
	}
}

// rawHTTPServer accepts connections and answers each request with 200,
// recording the raw request bytes and the number of connections.
type rawHTTPServer struct {
	l     net.Listener
	reqs  chan []byte
	conns chan struct{}
}

func newRawHTTPServer(t *testing.T) *rawHTTPServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawHTTPServer{l: l, reqs: make(chan []byte, 10), conns: make(chan struct{}, 10)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.conns <- struct{}{}
			go s.serve(c)
		}
	}()
	return s
}

func (s *rawHTTPServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var raw bytes.Buffer
		n := -1
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			raw.WriteString(line)
			if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if line == "\r\n" {
				break
			}
		}
		if n < 0 {
			return
		}
		if _, err := io.CopyN(&raw, br, int64(n)); err != nil {
			return
		}
		s.reqs <- raw.Bytes()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nthanks")
	}
}

func TestGoldenHTTPRequest(t *testing.T) {
	srv := newRawHTTPServer(t)
	addr := srv.l.Addr().String()
	u, err := channels.ParseDrainURL("http://user:p%40ss@" + addr + "/logs?app=x#frag")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig().withDefaults()
	c := newHTTPClient(&cfg, channels.Drain{ID: 1, Token: goldenToken}, u)
	defer c.close()
	f := &format{http: true, token: goldenToken, target: cfg.BatchBytes}
	var b batch
	from, recs, res := goldenRead()
	b.build(f, from, recs, res, 3, goldenPending, goldenNow)
	if o, err := c.attempt(context.Background(), &b); o != outOK {
		t.Fatalf("attempt = %v, %v", o, err)
	}
	got := <-srv.reqs
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	checkGolden(t, "http_request.golden", bytes.ReplaceAll(got, []byte(":"+port), []byte(":PORT")))

	// The body decodes (with the test's own decoder) to Logplex-Msg-Count frames.
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(got)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	frames, err := decodeOctets(body)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Logplex-Msg-Count") != "4" || len(frames) != 4 {
		t.Errorf("Logplex-Msg-Count %s, %d frames; want 4 (L10 + 3)", req.Header.Get("Logplex-Msg-Count"), len(frames))
	}
	if n, ok := l10Count(strings.SplitN(frames[0], " ", 7)[6]); !ok || n != 5 {
		t.Errorf("L10 frame %q, want a count of 5", frames[0])
	}

	// A second request uses the same connection, and a retry of a batch
	// carries the same Frame-Id.
	id := b.frameID
	b.build(f, from, recs, res, 3, goldenPending, goldenNow.Add(time.Hour))
	if b.frameID != id {
		t.Errorf("Frame-Id changed between builds of the same batch: %s, %s", id, b.frameID)
	}
	if o, err := c.attempt(context.Background(), &b); o != outOK {
		t.Fatalf("attempt = %v, %v", o, err)
	}
	<-srv.reqs
	if n := len(srv.conns); n != 1 {
		t.Errorf("%d connections, want 1 (keep-alive)", n)
	}
}

func TestGoldenSyslogFrames(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	u, err := channels.ParseDrainURL("syslog://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig().withDefaults()
	c := newSyslogClient(&cfg, u)
	f := &format{token: goldenToken, target: maxSyslogWrite}
	var b batch
	from, recs, res := goldenRead()
	b.build(f, from, recs, res, 3, goldenPending, goldenNow)
	if o, err := c.attempt(context.Background(), &b); o != outOK {
		t.Fatalf("attempt = %v, %v", o, err)
	}
	c.close()
	stream := <-got
	checkGolden(t, "syslog_frames.golden", stream)

	br := bufio.NewReader(bytes.NewReader(stream))
	var lines []syslogLine
	for {
		fr, err := readOctetFrame(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sl, err := parseSyslogLine(fr)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, sl)
	}
	if len(lines) != 4 || lines[0].Host != goldenToken || lines[1].Msg != "Logsplat test message 1" || lines[2].Msg != "line with newline" {
		t.Errorf("decoded %+v", lines)
	}
}

func TestBatchBuild(t *testing.T) {
	rec := func(n int) []byte {
		return []byte("<134>1 2024-01-02T03:04:05Z h app web.1 - - " + strings.Repeat("x", n))
	}
	read := func(sizes ...int) (*channels.Records, channels.ReadResult) {
		var recs channels.Records
		for i, n := range sizes {
			if n < 0 {
				recs.Add(uint64(10+i), 1, []byte("garbage"))
				continue
			}
			recs.Add(uint64(10+i), int64(i+1), rec(n))
		}
		return &recs, channels.ReadResult{Epoch: "e", Next: channels.Cursor{Epoch: "e", Offset: uint64(10 + len(sizes))}}
	}
	from := channels.Cursor{Epoch: "e", Offset: 10}
	f := &format{http: true, token: goldenToken, target: 1000}
	now := goldenNow
	tests := []struct {
		name                  string
		sizes                 []int
		missed, pending       uint64
		send                  bool
		data, frames, records int
		next                  uint64
		l10                   uint64
	}{
		{"fits", []int{100, 100, 100}, 0, 0, true, 3, 3, 3, 13, 0},
		{"target ends the batch", []int{400, 400, 400}, 0, 0, true, 2, 2, 2, 12, 0},
		{"oversized alone", []int{5000, 10}, 0, 0, true, 1, 1, 1, 11, 0},
		{"unparseable skipped", []int{-1, 100, -1}, 0, 0, true, 1, 1, 3, 13, 0},
		{"only unparseable", []int{-1, -1}, 0, 0, false, 0, 0, 2, 12, 0},
		{"only unparseable, old loss waits", []int{-1}, 0, 7, false, 0, 0, 1, 11, 0},
		{"loss only", nil, 4, 0, true, 0, 1, 0, 10, 4},
		{"loss and pending", []int{10}, 4, 3, true, 1, 2, 1, 11, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, res := read(tc.sizes...)
			res.Missed = tc.missed
			var b batch
			b.build(f, from, recs, res, tc.pending, time.Time{}, now)
			if b.send() != tc.send || b.data != tc.data || b.frames != tc.frames || b.records != tc.records || b.next.Offset != tc.next || b.l10 != tc.l10 {
				t.Errorf("send %v data %d frames %d records %d next %d l10 %d; want %v %d %d %d %d %d",
					b.send(), b.data, b.frames, b.records, b.next.Offset, b.l10,
					tc.send, tc.data, tc.frames, tc.records, tc.next, tc.l10)
			}
			frames, err := decodeOctets(b.body)
			if err != nil || len(frames) != b.frames {
				t.Errorf("body has %d frames (%v), want %d", len(frames), err, b.frames)
			}
		})
	}
}

func TestFrameIDDeterministic(t *testing.T) {
	id := func(token, epoch string, first uint64, n int) string {
		b := batch{first: first, records: n, next: channels.Cursor{Epoch: epoch}}
		b.setFrameID(token)
		return string(b.frameID[:])
	}
	a := id(goldenToken, "e", 10, 5)
	if !frameIDRe.MatchString(a) || a != id(goldenToken, "e", 10, 5) {
		t.Fatalf("frame id %q not stable", a)
	}
	for _, other := range []string{id("d.other", "e", 10, 5), id(goldenToken, "f", 10, 5), id(goldenToken, "e", 11, 5), id(goldenToken, "e", 10, 6)} {
		if other == a {
			t.Errorf("different batches share frame id %s", a)
		}
	}
}
