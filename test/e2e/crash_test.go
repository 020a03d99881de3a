package e2e

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/plexustest"
)

// TestCrashKill9 runs the real binary under mixed load — HTTP posts that
// record every 204, a TCP sender, an HTTP drain whose receiver fails now
// and then, an SSE tail — and kill -9s it at random moments, 20 times.
// Then: every 204-acknowledged message is in the channel exactly once and
// in order, no message is there twice, offsets are dense in one epoch, the
// drain received every message, and the SSE client resumed after each
// crash exactly where it was, without a gap or an L15 notice.
func TestCrashKill9(t *testing.T) {
	rounds := 20
	if r := os.Getenv("CRASH_ROUNDS"); r != "" {
		rounds, _ = strconv.Atoi(r)
	}
	s := start(t, "-history", "10000000")
	ch := s.createChannel(t, "crash", "app")
	token := ch.Tokens["app"]

	drain := startFlakyDrain(t)
	s.addDrain(t, ch.ID, "http://"+drain.addr+"/")
	session := s.newSession(t, map[string]any{"channel_id": ch.ID, "num": "10000000", "tail": true})
	sessionPath := session[strings.Index(session, "/sessions/"):]

	sse := &sseFollower{t: t, path: sessionPath, addrs: make(chan string, 1)}
	sse.addrs <- s.Addrs.API
	go sse.run()
	defer sse.stop()

	acked := make([][]int, 2) // per HTTP poster: the sequence numbers answered 204
	nextSeq := make([]int, 2)
	tcpSeq := 0
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		logsURL := "http://" + s.Addrs.Logs + "/logs"
		for p := range acked {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var body strings.Builder
					first := nextSeq[p]
					for i := 0; i < 20; i++ {
						body.WriteString(frame(fmt.Sprintf("<134>1 2024-01-01T00:00:00Z host %s web.%d - - h%d-%d", token, p, p, first+i)))
					}
					nextSeq[p] += 20
					req, _ := http.NewRequest("POST", logsURL, strings.NewReader(body.String()))
					req.Header.Set("Content-Type", "application/logplex-1")
					req.Header.Set("Authorization", tokenAuth(token))
					resp, err := crashClient.Do(req)
					if err != nil {
						return // the server is gone
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusNoContent {
						for i := 0; i < 20; i++ {
							acked[p] = append(acked[p], first+i)
						}
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", s.Addrs.SyslogTCP)
			if err != nil {
				return
			}
			defer c.Close()
			w := bufio.NewWriter(c)
			for {
				select {
				case <-stop:
					w.Flush()
					return
				default:
				}
				fmt.Fprintf(w, "<134>1 2024-01-01T00:00:00Z host %s web.9 - - t-%d\n", token, tcpSeq)
				tcpSeq++
				if tcpSeq%50 == 0 {
					if w.Flush() != nil {
						return
					}
					time.Sleep(time.Millisecond) // pace the sender
				}
			}
		}()
		// Kill at a random moment under load.
		time.Sleep(time.Duration(30+rand.IntN(250)) * time.Millisecond)
		s.crash()
		close(stop)
		wg.Wait()
		s.launch()
		sse.addrs <- s.Addrs.API
	}

	// One last acknowledged message marks the end.
	s.mustPostLogs(t, token, fmt.Sprintf("<134>1 2024-01-01T00:00:00Z host %s web.0 - - end", token))

	// The channel's content, in offset order, through an SSE history read.
	all := readChannelSSE(t, s, ch.ID, "end")
	seen := map[string]int{}
	for _, m := range all {
		seen[m]++
		if seen[m] > 1 {
			t.Fatalf("message %q is in the channel twice", m)
		}
	}
	for p, seqs := range acked {
		if len(seqs) == 0 {
			t.Fatalf("poster %d never got a 204", p)
		}
		for _, q := range seqs {
			if seen[fmt.Sprintf("h%d-%d", p, q)] != 1 {
				t.Fatalf("acknowledged message h%d-%d is missing after the crashes", p, q)
			}
		}
	}
	// Per sender, what is stored is in the order it was sent.
	last := map[string]int{}
	for _, m := range all {
		src, n, ok := crashSeqOf(m)
		if !ok {
			continue
		}
		if prev, had := last[src]; had && n <= prev {
			t.Fatalf("%s: %q after sequence %d: out of order", src, m, prev)
		}
		last[src] = n
	}
	if last["t"] == 0 {
		t.Fatalf("no TCP message stored")
	}
	acks := len(acked[0]) + len(acked[1])
	t.Logf("%d rounds: %d messages stored (%d acknowledged over HTTP, %d TCP lines sent)", rounds, len(all), acks, tcpSeq)

	// The drain delivered every message (at least once: a receiver that
	// failed, or a crash before the position was stored, means re-sends).
	waitFor(t, 60*time.Second, "the drain to receive every message", func() (bool, string) {
		got := drain.texts()
		missing := 0
		var example string
		for _, m := range all {
			if !got[m] {
				missing++
				example = m
			}
		}
		drain.mu.Lock()
		n := drain.n
		drain.mu.Unlock()
		var runs []string // the missing stretches, for the failure report
		inRun := false
		for i, m := range all {
			if !got[m] != inRun {
				runs = append(runs, fmt.Sprintf("#%d %s", i, m))
				inRun = !inRun
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d missing (e.g. %q) after %d requests; missing from/to: %v", missing, len(all), example, n, runs)
	})

	// The SSE follower saw everything, in order, resuming across crashes.
	waitFor(t, 30*time.Second, "the SSE follower to reach the end", func() (bool, string) {
		ev := sse.events()
		return len(ev) > 0 && ev[len(ev)-1].text == "end", fmt.Sprintf("%d events", len(ev))
	})
	if err := sse.failure(); err != "" {
		t.Fatal(err)
	}
	ev := sse.events()
	if len(ev) != len(all) {
		t.Fatalf("the SSE follower saw %d messages, the channel holds %d", len(ev), len(all))
	}
	for i := range ev {
		if ev[i].text != all[i] {
			t.Fatalf("SSE event %d is %q, the channel's message %d is %q", i, ev[i].text, i, all[i])
		}
	}
	t.Logf("SSE follower reconnected %d times", sse.reconnects.Load())
}

var crashClient = &http.Client{Timeout: 10 * time.Second}

// crash kills the process with SIGKILL and waits for it to be gone.
func (s *Server) crash() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatalf("kill -9: %v", err)
	}
	<-s.done
	s.cmd = nil
}

var crashSeqRE = regexp.MustCompile(`(h\d|t)-(\d+)$`)

// crashSeqOf returns the sender and sequence number of a test message.
func crashSeqOf(m string) (string, int, bool) {
	g := crashSeqRE.FindStringSubmatch(m)
	if g == nil {
		return "", 0, false
	}
	n, _ := strconv.Atoi(g[2])
	return g[1], n, true
}

// crashTextOf returns the test text at the end of a message or line ("h0-12",
// "t-5", "end"), or "".
func crashTextOf(line string) string {
	if strings.HasSuffix(line, " end") || line == "end" {
		return "end"
	}
	if g := crashSeqRE.FindString(line); g != "" {
		return g
	}
	return ""
}

// readChannelSSE reads a channel's whole history over SSE until the
// message whose text is until, checking that offsets are dense in one
// epoch; it returns the test texts in offset order.
func readChannelSSE(t *testing.T, s *Server, channelID, until string) []string {
	t.Helper()
	u := s.newSession(t, map[string]any{"channel_id": channelID, "num": "10000000", "tail": true})
	r := newSSEReader(openStream(t, u, "Accept", "text/event-stream"))
	defer r.Close()
	var out []string
	var epoch string
	var prev uint64
	for {
		ev := r.next(t, 30*time.Second)
		e, off, ok := splitEventID(ev.ID)
		if !ok {
			t.Fatalf("event without an <epoch>:<offset> id: %+v", ev)
		}
		if epoch == "" {
			epoch = e
		} else if e != epoch {
			t.Fatalf("epoch changed from %s to %s at offset %d: history was lost", epoch, e, off)
		}
		if prev != 0 && off != prev+1 {
			t.Fatalf("offsets not dense: %d after %d (%q)", off, prev, ev.Data)
		}
		prev = off
		txt := crashTextOf(ev.Data)
		if txt == "" {
			t.Fatalf("unexpected event %q (id %s)", ev.Data, ev.ID)
		}
		out = append(out, txt)
		if txt == until {
			return out
		}
	}
}

func splitEventID(id string) (string, uint64, bool) {
	e, o, ok := strings.Cut(id, ":")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.ParseUint(o, 10, 64)
	return e, n, err == nil
}

// sseFollower follows a session's SSE stream across server crashes: when
// the stream breaks it waits for the next server address and resumes with
// Last-Event-ID, as EventSource does.
type sseFollower struct {
	t     *testing.T
	path  string
	addrs chan string

	mu         sync.Mutex
	evs        []followed
	lastID     string
	fail       string
	reconnects atomic.Int32
	done       atomic.Bool
	body       io.Closer
}

type followed struct {
	id   string
	text string
}

func (f *sseFollower) run() {
	for addr := range f.addrs {
		if f.done.Load() {
			return
		}
		f.follow(addr)
	}
}

// follow reads one connection until it breaks.
func (f *sseFollower) follow(addr string) {
	req, _ := http.NewRequest("GET", "http://"+addr+f.path, nil)
	req.Header.Set("Accept", "text/event-stream")
	f.mu.Lock()
	resume := f.lastID
	f.mu.Unlock()
	if resume != "" {
		req.Header.Set("Last-Event-ID", resume)
		f.reconnects.Add(1)
	}
	resp, err := streamClient.Do(req)
	if err != nil {
		return // the server died meanwhile; the next address comes
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.setFail(fmt.Sprintf("SSE resume with %q answered %d", resume, resp.StatusCode))
		return
	}
	f.mu.Lock()
	f.body = resp.Body
	f.mu.Unlock()
	br := bufio.NewReader(resp.Body)
	var id, data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "" && data != "":
			f.add(id, data)
			id, data = "", ""
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
}

func (f *sseFollower) add(id, data string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Contains(data, "L15") || strings.Contains(data, "L11") {
		f.setFailLocked(fmt.Sprintf("the SSE stream said %q after resuming with %q", data, f.lastID))
		return
	}
	if f.lastID != "" {
		e0, o0, _ := splitEventID(f.lastID)
		e1, o1, ok := splitEventID(id)
		if !ok || e1 != e0 || o1 != o0+1 {
			f.setFailLocked(fmt.Sprintf("SSE event %q (%q) follows %q: a gap, a duplicate or a new epoch", id, data, f.lastID))
			return
		}
	}
	f.lastID = id
	f.evs = append(f.evs, followed{id: id, text: crashTextOf(data)})
}

func (f *sseFollower) setFail(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setFailLocked(s)
}

func (f *sseFollower) setFailLocked(s string) {
	if f.fail == "" {
		f.fail = s
	}
}

func (f *sseFollower) failure() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

func (f *sseFollower) events() []followed {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]followed(nil), f.evs...)
}

func (f *sseFollower) stop() {
	f.done.Store(true)
	f.mu.Lock()
	if f.body != nil {
		f.body.Close()
	}
	f.mu.Unlock()
	close(f.addrs)
}

// flakyDrain is an HTTP drain endpoint that answers every fifth request
// with 500 and records the messages of the others.
type flakyDrain struct {
	addr string
	mu   sync.Mutex
	n    int
	got  map[string]bool
}

func startFlakyDrain(t *testing.T) *flakyDrain {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &flakyDrain{addr: ln.Addr().String(), got: map[string]bool{}}
	srv := &http.Server{Handler: http.HandlerFunc(d.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return d
}

func (d *flakyDrain) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if d.n%5 == 0 {
		http.Error(w, "flaky", http.StatusInternalServerError)
		return
	}
	frames, err := plexustest.SplitFrames(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, f := range frames {
		if txt := crashTextOf(f); txt != "" {
			d.got[txt] = true
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (d *flakyDrain) texts() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]bool, len(d.got))
	for k := range d.got {
		out[k] = true
	}
	return out
}
