package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// session creates a session through the API and returns its URL.
func (e *env) session(body string) string {
	e.t.Helper()
	r := e.call("POST", "/v2/sessions", body)
	var s struct{ URL string }
	if err := json.Unmarshal([]byte(r.body), &s); err != nil || r.code != 201 {
		e.t.Fatalf("create session %s = %v", body, r)
	}
	return s.URL
}

// open starts a GET of a session URL; the stream ends with the test or
// with cancel.
func (e *env) open(url string, header map[string]string) (*http.Response, *bufio.Reader, context.CancelFunc) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	r, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cancel(); res.Body.Close() })
	return res, bufio.NewReader(res.Body), cancel
}

func seqMsg(i int) string {
	return fmt.Sprintf("<134>1 2012-12-10T03:00:48Z host app web.%d - - seq %d", i%3+1, i)
}

func TestSessionHistory(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.History = 20 }))
	ch, _ := e.channel("app")
	for i := 1; i <= 30; i++ {
		e.appendRaw(ch, seqMsg(i))
		if i == 25 {
			e.appendRaw(ch, "<42> blafasel")
		}
	}
	lines := func(from, to int, keep func(int) bool) string {
		var b strings.Builder
		for i := from; i <= to; i++ {
			if keep == nil || keep(i) {
				fmt.Fprintf(&b, "2012-12-10T03:00:48Z app[web.%d]: seq %d\n", i%3+1, i)
			}
		}
		return b.String()
	}
	web1 := func(i int) bool { return i%3 == 0 }
	tests := []struct {
		name, body, want string
	}{
		{"num 5 is exactly 5 messages", `{"channel_id":"` + ch + `","num":"5"}`, lines(26, 30, nil)},
		{"num as a number", `{"channel_id":` + ch + `,"num":3}`, lines(28, 30, nil)},
		{"num 0", `{"channel_id":"` + ch + `","num":"0"}`, ""},
		// The window of 7 holds an unparseable message: 6 lines.
		{"unparseable skipped", `{"channel_id":"` + ch + `","num":"7"}`, lines(25, 30, nil)},
		{"num beyond History", `{"channel_id":"` + ch + `","num":"2000"}`, lines(12, 30, nil)},
		{"num -1 is History", `{"channel_id":"` + ch + `","num":"-1"}`, lines(12, 30, nil)},
		{"default num (100) capped", `{"channel_id":"` + ch + `"}`, lines(12, 30, nil)},
		{"ps filter keeps num matches", `{"channel_id":"` + ch + `","num":"3","ps":"web.1"}`, lines(22, 30, web1)},
		{"ps prefix", `{"channel_id":"` + ch + `","num":"4","ps":"web"}`, lines(27, 30, nil)},
		{"ps filter within History", `{"channel_id":"` + ch + `","num":"100","ps":"web.1"}`, lines(12, 30, web1)},
		{"ps no match", `{"channel_id":"` + ch + `","ps":"webx"}`, ""},
		{"source filter", `{"channel_id":"` + ch + `","num":"2","source":"app"}`, lines(29, 30, nil)},
		{"source no match", `{"channel_id":"` + ch + `","source":"heroku"}`, ""},
		{"tail false", `{"channel_id":"` + ch + `","num":"1","tail":false}`, lines(30, 30, nil)},
		{"unknown channel", `{"channel_id":"424242"}`, ""},
	}
	for _, tt := range tests {
		url := e.session(tt.body)
		res, br, _ := e.open(url, nil)
		body, err := io.ReadAll(br)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html" || string(body) != tt.want {
			t.Errorf("%s: %d %q %q, want 200 text/html %q", tt.name, res.StatusCode, res.Header.Get("Content-Type"), body, tt.want)
		}
		if len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" || !res.Close {
			t.Errorf("%s: transfer-encoding %v, close %v; want chunked and close", tt.name, res.TransferEncoding, res.Close)
		}
	}
}

func TestSessionErrors(t *testing.T) {
	e := newEnv(t)
	const unknown = "0b0d2a5e-4a4d-4e68-8d6c-2f4c3c2b1a00"
	start := time.Now()
	wantResp(t, "unknown session", e.do(req{method: "GET", url: e.api.URL + "/sessions/" + unknown}), 404, "text/html", "Not found")
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("unknown session answered after %v, want the lookup wait", d)
	}
	wantResp(t, "not a uuid", e.do(req{method: "GET", url: e.api.URL + "/sessions/abc"}), 404, "text/html", "Not found")
	wantResp(t, "unknown canary", e.do(req{method: "GET", url: e.api.URL + "/v2/canary-fetch/abc"}), 404, "text/html", "Not found")
	for body, want := range map[string]string{
		`{"num":"1"}`:                   "'channel_id' missing",
		`{"channel_id":"1","num":"x"}`:  "'num' must be a decimal integer",
		`not json`:                      "invalid session JSON",
		`{"channel_id":"1","num":null}`: "",
	} {
		r := e.do(req{method: "GET", url: e.session(body)})
		if want == "" {
			if r.code != 200 {
				t.Errorf("session %s = %v", body, r)
			}
			continue
		}
		wantResp(t, "session "+body, r, 400, "text/html", want)
	}
}

func TestSessionCanaryAndFlags(t *testing.T) {
	e := newEnv(t)
	ch, _ := e.channel("app")
	e.appendRaw(ch, seqMsg(1))
	r := e.call("POST", "/v2/canary-sessions", `{"channel_id":"`+ch+`","tail":true}`)
	var s struct{ URL string }
	if err := json.Unmarshal([]byte(r.body), &s); err != nil || !strings.HasPrefix(s.URL, "/v2/canary-fetch/") {
		t.Fatalf("canary = %v", r)
	}
	res, br, _ := e.open(e.api.URL+s.URL, nil)
	body, _ := io.ReadAll(br) // a canary never tails: the stream ends
	if string(body) != "2012-12-10T03:00:48Z app[web.2]: seq 1\n" || res.Close {
		t.Errorf("canary fetch = %q (close %v)", body, res.Close)
	}

	if err := e.store.SetChannelFlags(context.Background(), ch, []string{"no_tail", "no_redis"}); err != nil {
		t.Fatal(err)
	}
	res, br, _ = e.open(e.session(`{"channel_id":"`+ch+`","tail":true}`), nil)
	body, _ = io.ReadAll(br)
	lines := strings.Split(string(body), "\n")
	if len(lines) != 3 || lines[0] != "2012-12-10T03:00:48Z app[web.2]: seq 1" ||
		!strings.HasSuffix(lines[1], " Logplex: Error L20 (Tail sessions forbidden) Tail sessions for this app are forbidden due to log volume.") {
		t.Errorf("no_tail session = %q", body)
	}
	if got := res.Header.Get("X-Heroku-Warning"); got != "Warning: log history discarded due to excessive volume." {
		t.Errorf("no_redis warning = %q", got)
	}
}

func TestSessionDenyTails(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.DenyTails = true }))
	ch, _ := e.channel("app")
	e.appendRaw(ch, seqMsg(1))
	_, br, _ := e.open(e.session(`{"channel_id":"`+ch+`","tail":true}`), nil)
	if body, _ := io.ReadAll(br); string(body) != "2012-12-10T03:00:48Z app[web.2]: seq 1\n" {
		t.Errorf("denied tail = %q", body)
	}
}

// writer appends seqMsg(from), seqMsg(from+1), … to ch in small batches
// until stop is closed; it returns the next number it would have written.
func (e *env) writer(ch string, from int, stop <-chan struct{}) <-chan int {
	done := make(chan int, 1)
	go func() {
		i := from
		for {
			select {
			case <-stop:
				done <- i
				return
			default:
			}
			b := &channels.Batch{ChannelID: ch, Time: time.Now().UnixNano()}
			for range 7 {
				b.Add([]byte(seqMsg(i)))
				i++
			}
			if err := e.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
				done <- i // the log closed: the test ended
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	return done
}

// readSeq reads plain session lines and returns the seq numbers.
func readSeq(t *testing.T, br *bufio.Reader, until int) []int {
	t.Helper()
	var seqs []int
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d lines: %v", len(seqs), err)
		}
		_, num, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ": seq ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			t.Fatalf("unexpected line %q", line)
		}
		seqs = append(seqs, n)
		if n >= until {
			return seqs
		}
	}
}

func wantConsecutive(t *testing.T, what string, seqs []int, first int) {
	t.Helper()
	for i, n := range seqs {
		if n != first+i {
			t.Fatalf("%s: line %d is seq %d, want %d (gap or duplicate)", what, i, n, first+i)
		}
	}
}

// TestTailGapless appends continuously while a tail session reads its
// history and follows: every message appears exactly once, in order,
// across the history/live boundary.
func TestTailGapless(t *testing.T) {
	e := newEnv(t, withRetention(channels.Retention{Count: 1 << 20}))
	ch, _ := e.channel("app")
	for i := 1; i <= 500; i++ {
		e.appendRaw(ch, seqMsg(i))
	}
	stop := make(chan struct{})
	next := e.writer(ch, 501, stop)
	time.Sleep(2 * time.Millisecond)
	res, br, cancel := e.open(e.session(`{"channel_id":"`+ch+`","num":"100","tail":true}`), nil)
	if res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	first := readSeq(t, br, 0)[0]
	eventually(t, "writer past 3000", func() bool {
		info, _ := e.log.Info(context.Background(), ch)
		return info.Next > 3000
	})
	close(stop)
	last := <-next - 1
	seqs := readSeq(t, br, last)
	wantConsecutive(t, "tail", append([]int{first}, seqs...), first)
	if n := len(seqs) + 1; n < 2000 {
		t.Errorf("only %d lines", n)
	}
	eventually(t, "tail gauge 1", func() bool { return e.metric("plexus_tail_sessions") == 1 })
	cancel()
	eventually(t, "tail gauge 0", func() bool { return e.metric("plexus_tail_sessions") == 0 })
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id      string
	data    string
	comment bool
}

func readEvent(t *testing.T, br *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.comment || data != nil {
				ev.data = strings.Join(data, "\n")
				return ev
			}
		case strings.HasPrefix(line, ":"):
			ev.comment = true
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
}

// eventID is the SSE id of offset n in channel ch: "<epoch>:<n>".
func (e *env) eventID(ch string, n int) string {
	info, err := e.log.Info(context.Background(), ch)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.Epoch + ":" + strconv.Itoa(n)
}

// TestSSEResume reads a tail as Server-Sent Events while a writer appends,
// disconnects, and resumes with Last-Event-ID (and ?since=): the stream
// continues exactly after the last event seen.
func TestSSEResume(t *testing.T) {
	e := newEnv(t, withRetention(channels.Retention{Count: 1 << 20}))
	ch, _ := e.channel("app")
	for i := 1; i <= 50; i++ {
		e.appendRaw(ch, seqMsg(i))
	}
	url := e.session(`{"channel_id":"` + ch + `","num":"10","tail":true}`)
	sse := map[string]string{"Accept": "text/event-stream"}

	res, br, cancel := e.open(url, sse)
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	ev := readEvent(t, br)
	if ev.id != e.eventID(ch, 41) || ev.data != "2012-12-10T03:00:48Z app[web.3]: seq 41" {
		t.Fatalf("first event %+v, want id 41 (history of 10)", ev)
	}
	stop := make(chan struct{})
	next := e.writer(ch, 51, stop)
	var last sseEvent
	for range 500 {
		last = readEvent(t, br)
	}
	cancel()
	if last.id != e.eventID(ch, 541) {
		t.Fatalf("event 501 has id %s", last.id)
	}

	check := func(what string, header map[string]string, query string, from int) {
		_, br, cancel := e.open(url+query, header)
		defer cancel()
		for i := from; i < from+300; i++ {
			ev := readEvent(t, br)
			if want := fmt.Sprintf("2012-12-10T03:00:48Z app[web.%d]: seq %d", i%3+1, i); ev.id != e.eventID(ch, i) || ev.data != want {
				t.Fatalf("%s: event %+v, want id %d %q", what, ev, i, want)
			}
		}
	}
	check("Last-Event-ID", map[string]string{"Accept": "text/event-stream", "Last-Event-ID": last.id}, "", 542)
	check("bare offset", map[string]string{"Accept": "text/event-stream", "Last-Event-ID": "600"}, "", 601)
	check("since", sse, "?since=700", 701)
	close(stop)
	<-next

	wantResp(t, "bad Last-Event-ID", e.do(req{method: "GET", url: url, header: map[string]string{"Accept": "text/event-stream", "Last-Event-ID": "x"}}),
		400, "text/html", "Last-Event-ID and since must be a message offset")
}

func TestSSEHistoryOnlyAndNotices(t *testing.T) {
	e := newEnv(t, withRetention(channels.Retention{Count: 10}))
	ch, _ := e.channel("app")
	for i := 1; i <= 30; i++ {
		e.appendRaw(ch, seqMsg(i))
	}
	e.appendRaw(ch, "<134>1 2012-12-10T03:00:48Z host app web.1 - - two\nlines\r\nthree\n")
	sse := map[string]string{"Accept": "text/event-stream"}
	url := e.session(`{"channel_id":"` + ch + `","num":"2"}`)
	_, br, _ := e.open(url, sse)
	body, _ := io.ReadAll(br)
	want := "id: " + e.eventID(ch, 30) + "\ndata: 2012-12-10T03:00:48Z app[web.1]: seq 30\n\n" +
		"id: " + e.eventID(ch, 31) + "\ndata: 2012-12-10T03:00:48Z app[web.1]: two\ndata: lines\ndata: three\n\n"
	if string(body) != want {
		t.Errorf("SSE history = %q, want %q", body, want)
	}

	// Resuming from an offset that left retention first says how many
	// messages were missed: retained are 22..31, so after 5 it is 16.
	_, br, _ = e.open(url+"?since=5", sse)
	ev := readEvent(t, br)
	if ev.id != "" || !strings.Contains(ev.data, " logplex[1]: Error L11 (Tail buffer overflow) -> This tail session dropped 16 messages since ") {
		t.Errorf("L11 event = %+v", ev)
	}
	if ev := readEvent(t, br); ev.id != e.eventID(ch, 22) {
		t.Errorf("after L11: %+v, want id 22", ev)
	}
	// An offset beyond the end: the history restarted.
	_, br, _ = e.open(url+"?since=500", sse)
	if ev := readEvent(t, br); ev.id != "" || !strings.Contains(ev.data, "Error L15 (Tail buffer temporarily unavailable)") {
		t.Errorf("reset event = %+v", ev)
	}
	if ev := readEvent(t, br); ev.id != e.eventID(ch, 22) {
		t.Errorf("after reset: %+v, want id 22", ev)
	}
	// An id of another epoch (the history restarted since the client saw
	// it): the same notice, then everything retained, even though the
	// offset itself exists in the new history.
	_, br, _ = e.open(url, map[string]string{"Accept": "text/event-stream", "Last-Event-ID": "oldepoch:25"})
	if ev := readEvent(t, br); ev.id != "" || !strings.Contains(ev.data, "Error L15 (Tail buffer temporarily unavailable)") {
		t.Errorf("foreign epoch: %+v, want the L15 notice", ev)
	}
	if ev := readEvent(t, br); ev.id != e.eventID(ch, 22) {
		t.Errorf("after foreign epoch: %+v, want id 22", ev)
	}
}

func TestSSEHeartbeat(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.Heartbeat = 20 * time.Millisecond }))
	ch, _ := e.channel("app")
	_, br, _ := e.open(e.session(`{"channel_id":"`+ch+`","tail":true}`), map[string]string{"Accept": "text/event-stream"})
	if ev := readEvent(t, br); !ev.comment {
		t.Errorf("idle stream sent %+v, want a keep-alive comment", ev)
	}
	e.appendRaw(ch, seqMsg(1))
	for {
		ev := readEvent(t, br)
		if ev.comment {
			continue
		}
		if ev.id != e.eventID(ch, 1) {
			t.Errorf("event %+v, want id 1", ev)
		}
		break
	}
}

// blockingWriter is a ResponseWriter whose first Flush blocks until
// release is closed: a client that stopped reading.
type blockingWriter struct {
	header  http.Header
	flushed chan struct{} // closed at the first Flush
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	out     strings.Builder
}

func (w *blockingWriter) Header() http.Header { return w.header }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

func (w *blockingWriter) Flush() {
	w.once.Do(func() {
		close(w.flushed)
		<-w.release
	})
}

func (w *blockingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

// TestTailSlowClientGetsL11 blocks a tail's writes while the channel moves
// past its retention: the tail reports exactly how many messages it
// missed, then continues with what is retained.
func TestTailSlowClientGetsL11(t *testing.T) {
	e := newEnv(t, withRetention(channels.Retention{Count: 10}))
	ch, _ := e.channel("app")
	for i := 1; i <= 5; i++ {
		e.appendRaw(ch, seqMsg(i))
	}
	url := e.session(`{"channel_id":"` + ch + `","num":"2","tail":true}`)
	w := &blockingWriter{header: http.Header{}, flushed: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.APIHandler().ServeHTTP(w, r)
	}()
	<-w.flushed // history (4, 5) written; the client stops reading
	for i := 6; i <= 55; i++ {
		e.appendRaw(ch, seqMsg(i))
	}
	close(w.release)
	// Retained are 46..55: the tail missed 6..45, 40 messages.
	eventually(t, "tail caught up", func() bool { return strings.Contains(w.String(), "seq 55\n") })
	cancel()
	<-done
	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(lines) != 13 || lines[0] != "2012-12-10T03:00:48Z app[web.2]: seq 4" ||
		!strings.Contains(lines[2], " logplex[1]: Error L11 (Tail buffer overflow) -> This tail session dropped 40 messages since ") ||
		lines[3] != "2012-12-10T03:00:48Z app[web.2]: seq 46" {
		t.Errorf("slow tail wrote:\n%s", w.String())
	}
}
