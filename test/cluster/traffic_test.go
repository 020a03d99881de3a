package cluster

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Messages are numbered per sender: "m <sender> <n>", n = 1, 2, …, with
// the sender's name as PROCID too.

func message(token, sender string, n int) string {
	return fmt.Sprintf("<134>1 2024-01-02T03:04:05.000000Z host %s %s - - m %s %d", token, sender, sender, n)
}

var msgRE = regexp.MustCompile(`\bm (\S+) (\d+)$`)

// parseMsg finds "m <sender> <n>" at the end of a session line or frame.
func parseMsg(s string) (sender string, n int, ok bool) {
	m := msgRE.FindStringSubmatch(strings.TrimRight(s, "\n"))
	if m == nil {
		return "", 0, false
	}
	n, _ = strconv.Atoi(m[2])
	return m[1], n, true
}

func frame(msg string) string { return strconv.Itoa(len(msg)) + " " + msg }

func tokenAuth(token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("token:"+token))
}

// sender writes numbered messages to one node until it has written its
// quota or is stopped. Sent is the last number it handed over (TCP: the
// write completed; HTTP: 204).
type sender struct {
	Name string
	sent atomic.Int64
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	err      error
	retries  int         // 503 answers (resent)
	statuses []string    // unexpected answers or transport errors, with times
	offered  []time.Time // when message n+1 was first sent
}

func newSender(name string) *sender {
	return &sender{Name: name, stop: make(chan struct{}), done: make(chan struct{})}
}

// Stop ends the sender and returns the last number sent.
func (s *sender) Stop() int {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return int(s.sent.Load())
}

// Wait waits until the sender finished its quota (or was stopped).
func (s *sender) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		t.Fatalf("sender %s did not finish within %v (sent %d)", s.Name, timeout, s.sent.Load())
	}
	return int(s.sent.Load())
}

func (s *sender) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *sender) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *sender) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *sender) markOffered(to int) {
	now := time.Now()
	s.mu.Lock()
	for len(s.offered) < to {
		s.offered = append(s.offered, now)
	}
	s.mu.Unlock()
}

// startTCPSender writes quota messages (0: until stopped) in chunks of
// batch over one TCP connection, both framings, pausing pause between
// chunks.
func startTCPSender(t testing.TB, name, addr, token string, quota, batch int, pause time.Duration) *sender {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("sender %s: dial %s: %v", name, addr, err)
	}
	s := newSender(name)
	go func() {
		defer close(s.done)
		defer conn.Close()
		var buf []byte
		for n := 1; quota == 0 || n <= quota; {
			if s.stopped() {
				return
			}
			buf = buf[:0]
			first := n
			for i := 0; i < batch && (quota == 0 || n <= quota); i++ {
				msg := message(token, name, n)
				if n%2 == 0 {
					buf = append(buf, frame(msg)...)
				} else {
					buf = append(buf, msg+"\n"...)
				}
				n++
			}
			s.markOffered(n - 1)
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write(buf); err != nil {
				s.fail(fmt.Errorf("sender %s: write messages %d-%d: %w", name, first, n-1, err))
				return
			}
			s.sent.Store(int64(n - 1))
			if pause > 0 {
				time.Sleep(pause)
			}
		}
	}()
	t.Cleanup(func() { s.Stop() })
	return s
}

// startHTTPSender POSTs quota messages (0: until stopped) in requests of
// batch messages to POST /logs with token auth. A 503 with Retry-After is
// counted and the same request is sent again; anything else but 204 is
// an error: recorded, and the sender stops.
func startHTTPSender(t testing.TB, name, logsAddr, token string, quota, batch int, pause time.Duration) *sender {
	t.Helper()
	s := newSender(name)
	url := "http://" + logsAddr + "/logs"
	auth := tokenAuth(token)
	go func() {
		defer close(s.done)
		var body strings.Builder
		for n := 1; quota == 0 || n <= quota; {
			if s.stopped() {
				return
			}
			body.Reset()
			first, count := n, 0
			for i := 0; i < batch && (quota == 0 || n <= quota); i++ {
				body.WriteString(frame(message(token, name, n)))
				n++
				count++
			}
			s.markOffered(n - 1)
			for attempt := 0; ; attempt++ {
				r, err := do("POST", url, auth, body.String(),
					"Content-Type", "application/logplex-1", "Logplex-Msg-Count", strconv.Itoa(count))
				if err == nil && r.Status == http.StatusNoContent {
					break
				}
				if err == nil && r.Status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") != "" {
					s.mu.Lock()
					s.retries++
					s.mu.Unlock()
					// Honour Retry-After, but not longer than a second: the
					// test is bounded.
					wait := time.Second
					if sec, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && sec < 1 {
						wait = 100 * time.Millisecond
					}
					select {
					case <-time.After(wait):
					case <-s.stop:
						return
					}
					continue
				}
				what := ""
				if err != nil {
					what = err.Error()
				} else {
					what = r.String()
				}
				s.mu.Lock()
				s.statuses = append(s.statuses, fmt.Sprintf("%s messages %d-%d: %s", time.Now().Format("15:04:05.000"), first, n-1, what))
				s.mu.Unlock()
				s.fail(fmt.Errorf("sender %s: POST /logs messages %d-%d: %s", name, first, n-1, what))
				return
			}
			s.sent.Store(int64(n - 1))
			if pause > 0 {
				select {
				case <-time.After(pause):
				case <-s.stop:
					return
				}
			}
		}
	}()
	t.Cleanup(func() { s.Stop() })
	return s
}

// ---- SSE tail ----

// Event is one server-sent event of a session: HasID for messages (ID is
// the offset), no id for notices (L11, L15).
type Event struct {
	ID    uint64
	RawID string
	HasID bool
	Data  string
	At    time.Time
}

// tail is an open SSE tail session.
type tail struct {
	url       string // session URL on the node
	reconnect bool   // like EventSource: reconnect with Last-Event-ID when the stream ends
	ctx       context.Context
	cancel    context.CancelFunc

	mu         sync.Mutex
	events     []Event
	err        error
	reconnects []string // when and after which id the stream ended and was reopened
	lastID     string   // raw id of the last message event ("" before one)
	done       chan struct{}
}

// openTail creates a tailing session (num history lines) through n and
// streams it with Accept: text/event-stream from the same node. With
// reconnect, an ended stream is opened again with Last-Event-ID, as a
// browser's EventSource does.
func (n *Node) openTail(t testing.TB, channelID string, num int, reconnect bool) *tail {
	t.Helper()
	r := n.API(t, "POST", "/v3/sessions", map[string]any{"channel_id": channelID, "num": strconv.Itoa(num), "tail": true})
	mustStatus(t, "POST /v3/sessions", r, http.StatusCreated)
	ctx, cancel := context.WithCancel(context.Background())
	tl := &tail{url: "http://" + n.Addrs.API + sessionPath(t, r), reconnect: reconnect, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	resp, err := tl.get()
	if err != nil {
		cancel()
		t.Fatalf("GET session on %s: %v", n.ID, err)
	}
	go tl.run(resp)
	t.Cleanup(tl.Close)
	return tl
}

func (tl *tail) get() (*http.Response, error) {
	req, _ := http.NewRequestWithContext(tl.ctx, "GET", tl.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	tl.mu.Lock()
	if tl.lastID != "" {
		req.Header.Set("Last-Event-ID", tl.lastID)
	}
	tl.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("status %d: %q", resp.StatusCode, b)
	}
	return resp, nil
}

func (tl *tail) run(resp *http.Response) {
	defer close(tl.done)
	for {
		err := tl.read(resp)
		resp.Body.Close()
		if tl.ctx.Err() != nil {
			tl.setErr(tl.ctx.Err())
			return
		}
		if !tl.reconnect || err != io.EOF {
			tl.setErr(err)
			return
		}
		tl.mu.Lock()
		tl.reconnects = append(tl.reconnects, fmt.Sprintf("%s after id %s", time.Now().Format("15:04:05.000"), tl.lastID))
		tl.mu.Unlock()
		// Reopen with Last-Event-ID, retrying for a while (EventSource's
		// retry), bounded.
		deadline := time.Now().Add(10 * time.Second)
		for resp = nil; resp == nil; {
			if resp, err = tl.get(); err != nil {
				if time.Now().After(deadline) || tl.ctx.Err() != nil {
					tl.setErr(fmt.Errorf("reconnect: %w", err))
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

// read reads events until the stream ends (io.EOF when it ends cleanly).
func (tl *tail) read(resp *http.Response) error {
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var ev Event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.HasID || len(data) > 0 {
				ev.Data = strings.Join(data, "\n")
				ev.At = time.Now()
				tl.mu.Lock()
				tl.events = append(tl.events, ev)
				if ev.HasID {
					tl.lastID = ev.RawID
				}
				tl.mu.Unlock()
			}
			ev, data = Event{}, nil
		case strings.HasPrefix(line, "id:"):
			// The offset is the id's trailing number (an id that also
			// names the log epoch, "<epoch>-<offset>", works too).
			raw := strings.TrimSpace(line[3:])
			i := len(raw)
			for i > 0 && raw[i-1] >= '0' && raw[i-1] <= '9' {
				i--
			}
			id, err := strconv.ParseUint(raw[i:], 10, 64)
			if err != nil {
				return fmt.Errorf("bad SSE id line %q", line)
			}
			ev.ID, ev.RawID, ev.HasID = id, raw, true
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(line[5:], " "))
		case strings.HasPrefix(line, ":"):
			// comment (keep-alive)
		default:
			return fmt.Errorf("unexpected SSE line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

func (tl *tail) setErr(err error) {
	tl.mu.Lock()
	if tl.err == nil {
		tl.err = err
	}
	tl.mu.Unlock()
}

// Events returns the events so far and the stream's end error (nil while
// open; with reconnect, only when reopening failed).
func (tl *tail) Events() ([]Event, error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]Event(nil), tl.events...), tl.err
}

// Reconnects lists when the stream ended and was reopened.
func (tl *tail) Reconnects() []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]string(nil), tl.reconnects...)
}

func (tl *tail) Close() {
	tl.cancel()
	<-tl.done
}

// want is the set of messages the test expects: sender → last number
// (all of 1..last, or from first when set).
type want struct {
	last  map[string]int
	first map[string]int // default 1
}

func newWant() *want { return &want{last: map[string]int{}, first: map[string]int{}} }

func (w *want) total() int {
	n := 0
	for s, last := range w.last {
		n += last - w.from(s) + 1
	}
	return n
}

func (w *want) from(s string) int {
	if f := w.first[s]; f > 0 {
		return f
	}
	return 1
}

// check verifies that msgs (in delivery order) hold every wanted message
// exactly once and each sender's messages in order. Messages of unknown
// senders or below first are ignored (counted in ignored).
func (w *want) check(msgs []string) (problems []string, ignored int) {
	problems, ignored, _ = w.check3(msgs)
	return problems, ignored
}

// check3 is check that also says how many wanted messages are missing.
func (w *want) check3(msgs []string) (problems []string, ignored, missingTotal int) {
	seen := map[string]map[int]int{} // sender → n → count
	lastOf := map[string]int{}
	var order []string
	for _, m := range msgs {
		s, n, ok := parseMsg(m)
		if !ok {
			problems = append(problems, fmt.Sprintf("unexpected line %q", m))
			continue
		}
		last, known := w.last[s]
		if !known || n < w.from(s) || n > last {
			ignored++
			continue
		}
		if seen[s] == nil {
			seen[s] = map[int]int{}
		}
		seen[s][n]++
		if seen[s][n] > 1 {
			order = append(order, fmt.Sprintf("%s %d delivered %d times", s, n, seen[s][n]))
			continue
		}
		if n < lastOf[s] {
			order = append(order, fmt.Sprintf("%s %d after %s %d (order)", s, n, s, lastOf[s]))
		}
		lastOf[s] = max(lastOf[s], n)
	}
	problems = append(problems, first(order, 10)...)
	for s, last := range w.last {
		var missing []int
		for n := w.from(s); n <= last; n++ {
			if seen[s][n] == 0 {
				missing = append(missing, n)
			}
		}
		missingTotal += len(missing)
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d of %d-%d missing, e.g. %v", s, len(missing), w.from(s), last, missing[:min(len(missing), 10)]))
		}
	}
	return problems, ignored, missingTotal
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… and %d more", len(s)-n))
	}
	return s
}

// sessionPath returns the /sessions/<id> path of a POST /v3/sessions answer.
func sessionPath(t testing.TB, r Response) string {
	t.Helper()
	var v struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("session answer %s", r)
	}
	i := strings.Index(v.URL, "/sessions/")
	if i < 0 {
		t.Fatalf("session url %q has no /sessions/", v.URL)
	}
	return v.URL[i:]
}
