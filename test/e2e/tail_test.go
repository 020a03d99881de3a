package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// seqWriter appends numbered messages ("seq N", N = 1, 2, …) to a channel
// over one TCP connection until stopped.
type seqWriter struct {
	sent atomic.Int64 // last number written
	stop chan struct{}
	done chan struct{}
	err  error
}

func startSeqWriter(t testing.TB, addr, token string) *seqWriter {
	t.Helper()
	conn := dialTCP(t, addr)
	w := &seqWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var buf []byte
		for n := int64(1); ; {
			select {
			case <-w.stop:
				return
			default:
			}
			// A few messages per write, both framings, about 5000 msgs/s.
			buf = buf[:0]
			first := n
			for i := 0; i < 5; i++ {
				msg := fmt.Sprintf("<134>1 2024-01-02T03:04:05.000000Z host %s web.1 - - seq %d", token, n)
				if n%2 == 0 {
					buf = append(buf, frame(msg)...)
				} else {
					buf = append(buf, msg+"\n"...)
				}
				n++
			}
			if err := conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
				w.err = err
				return
			}
			if _, err := conn.Write(buf); err != nil {
				w.err = fmt.Errorf("write seq %d: %w", first, err)
				return
			}
			w.sent.Store(n - 1)
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() { w.Stop(t) })
	return w
}

// Stop ends the writer and returns the last number written.
func (w *seqWriter) Stop(t testing.TB) int64 {
	t.Helper()
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	return w.sent.Load()
}

var seqRE = regexp.MustCompile(`^2024-01-02T03:04:05\.000000Z app\[web\.1\]: seq (\d+)$`)

// seqOf parses the number of a session line written by seqWriter.
func seqOf(t testing.TB, line string) int64 {
	t.Helper()
	m := seqRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("unexpected session line %q", line)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestTailGapless opens a tail session while a writer appends continuously:
// history and live lines together must be consecutive numbers, with no gap
// and no duplicate at the switch from history to live.
func TestTailGapless(t *testing.T) {
	// Retention well above what a tail can fall behind on a busy machine:
	// this test is about the history → live switch, not about L11.
	s := start(t, "-history", "20000")
	ch := s.createChannel(t, "tail", "app")
	w := startSeqWriter(t, s.Addrs.SyslogTCP, ch.Tokens["app"])
	s.waitHistory(t, ch.ID, 300, 20*time.Second)

	u := s.newSession(t, map[string]any{"channel_id": ch.ID, "num": "100", "tail": true})
	resp := openStream(t, u)
	lr := newLineReader(resp)
	defer lr.Close()
	atOpen := w.sent.Load()

	var first, prev, last int64
	count := 0
	for {
		line, ok := lr.next(t, 15*time.Second)
		if !ok {
			t.Fatalf("tail ended after %d lines (last seq %d): %v", count, prev, <-lr.errc)
		}
		n := seqOf(t, line)
		if count == 0 {
			first = n
		} else if n != prev+1 {
			t.Fatalf("after seq %d came seq %d (line %d of the session): gap or duplicate", prev, n, count+1)
		}
		prev = n
		count++
		// Stop the writer once the tail is well past the point it opened at.
		if last == 0 && n > atOpen+3000 {
			last = w.Stop(t)
		}
		if last != 0 && n == last {
			break
		}
	}
	if first > atOpen {
		t.Errorf("history started at seq %d, after the %d messages sent when the tail opened", first, atOpen)
	}
	t.Logf("tail read seq %d..%d (%d lines); %d were sent when it opened", first, prev, count, atOpen)
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	ID   string
	Data string
}

// sseReader parses an event stream on a goroutine.
type sseReader struct {
	body   io.Closer
	events chan sseEvent
}

func newSSEReader(resp *http.Response) *sseReader {
	r := &sseReader{body: resp.Body, events: make(chan sseEvent, 1024)}
	go func() {
		defer close(r.events)
		br := bufio.NewReaderSize(resp.Body, 64*1024)
		var ev sseEvent
		var data []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if data != nil {
					ev.Data = strings.Join(data, "\n")
					r.events <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, ":"): // comment / keep-alive
			case strings.HasPrefix(line, "id:"):
				ev.ID = strings.TrimPrefix(strings.TrimPrefix(line, "id:"), " ")
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
	}()
	return r
}

func (r *sseReader) next(t testing.TB, timeout time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-r.events:
		if !ok {
			t.Fatalf("event stream ended")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %v", timeout)
		return sseEvent{}
	}
}

func (r *sseReader) Close() { r.body.Close() }

// readSeqEvents reads n events that must carry consecutive numbers starting
// at from (from 0: any start) and returns the last event and its number.
func readSeqEvents(t testing.TB, r *sseReader, n int, from int64) (sseEvent, int64) {
	t.Helper()
	var ev sseEvent
	prev := from - 1
	prevID := int64(-1)
	for i := 0; i < n; i++ {
		ev = r.next(t, 15*time.Second)
		seq := seqOf(t, strings.TrimSuffix(ev.Data, "\n"))
		if (i > 0 || from != 0) && seq != prev+1 {
			t.Fatalf("event %d: seq %d after seq %d", i, seq, prev)
		}
		// ids are "<epoch>:<offset>": the offset qualified by the log epoch
		_, off, _ := strings.Cut(ev.ID, ":")
		id, err := strconv.ParseInt(off, 10, 64)
		if err != nil || !strings.Contains(ev.ID, ":") {
			t.Fatalf("event %d: id %q is not <epoch>:<offset>", i, ev.ID)
		}
		if id <= prevID {
			t.Fatalf("event %d: id %d not after %d", i, id, prevID)
		}
		prev, prevID = seq, id
	}
	return ev, prev
}

// TestSSEResume reads part of an SSE tail, disconnects while the writer
// goes on, and resumes with Last-Event-ID and with ?since=: both continue
// exactly after the last event read.
func TestSSEResume(t *testing.T) {
	s := start(t, "-history", "20000")
	ch := s.createChannel(t, "sse", "app")
	w := startSeqWriter(t, s.Addrs.SyslogTCP, ch.Tokens["app"])
	s.waitHistory(t, ch.ID, 50, 20*time.Second)
	u := s.newSession(t, map[string]any{"channel_id": ch.ID, "num": "10", "tail": true})

	resp := openStream(t, u, "Accept", "text/event-stream")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	r := newSSEReader(resp)
	last, seq := readSeqEvents(t, r, 300, 0)
	r.Close()

	// Let the writer go on while nobody reads.
	waitFor(t, 20*time.Second, "the writer to move on", func() (bool, string) {
		return w.sent.Load() > seq+500, fmt.Sprintf("sent %d", w.sent.Load())
	})

	resp = openStream(t, u, "Accept", "text/event-stream", "Last-Event-ID", last.ID)
	r = newSSEReader(resp)
	last2, seq2 := readSeqEvents(t, r, 800, seq+1)
	r.Close()

	// ?since= works the same way.
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	resp = openStream(t, u+sep+"since="+last2.ID, "Accept", "text/event-stream")
	r = newSSEReader(resp)
	readSeqEvents(t, r, 200, seq2+1)
	r.Close()
	w.Stop(t)
}
