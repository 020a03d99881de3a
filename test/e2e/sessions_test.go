package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSessionFilters checks ps and source filters, num, and that
// "tail": false serves history only.
func TestSessionFilters(t *testing.T) {
	s := start(t)
	ch := s.createChannel(t, "filters", "app", "heroku")
	var msgs []string
	add := func(tokName, ps, text string) {
		tok := ch.Tokens[tokName]
		msgs = append(msgs, fmt.Sprintf("<134>1 2024-07-01T00:00:00.%06dZ host %s %s - - %s", len(msgs)+1, tok, ps, text))
	}
	add("app", "web.1", "one")
	add("app", "web.2", "two")
	add("app", "worker.1", "three")
	add("heroku", "router", "four")
	add("app", "webx", "five")
	add("app", "web", "six")
	for _, m := range msgs {
		// One request per token: token auth cooks only its own token.
		tok := ch.Tokens["app"]
		if strings.Contains(m, ch.Tokens["heroku"]) {
			tok = ch.Tokens["heroku"]
		}
		s.mustPostLogs(t, tok, m)
	}
	all := []string{
		"2024-07-01T00:00:00.000001Z app[web.1]: one",
		"2024-07-01T00:00:00.000002Z app[web.2]: two",
		"2024-07-01T00:00:00.000003Z app[worker.1]: three",
		"2024-07-01T00:00:00.000004Z heroku[router]: four",
		"2024-07-01T00:00:00.000005Z app[webx]: five",
		"2024-07-01T00:00:00.000006Z app[web]: six",
	}
	for _, c := range []struct {
		name string
		req  map[string]any
		want []string
	}{
		{"all", map[string]any{"num": "10"}, all},
		{"num", map[string]any{"num": "2"}, all[4:]},
		{"num as a JSON number", map[string]any{"num": 3}, all[3:]},
		{"ps web", map[string]any{"ps": "web"}, []string{all[0], all[1], all[5]}},
		{"ps web.2", map[string]any{"ps": "web.2"}, []string{all[1]}},
		{"source heroku", map[string]any{"source": "heroku"}, []string{all[3]}},
		{"ps and num", map[string]any{"ps": "web", "num": "2"}, []string{all[1], all[5]}},
		{"tail false", map[string]any{"tail": false}, all},
	} {
		c.req["channel_id"] = ch.ID
		u := s.newSession(t, c.req)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		resp, err := streamClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("%s: GET session: %v", c.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil {
			t.Errorf("%s: the history-only session did not end: %v (got %q)", c.name, err, body)
			continue
		}
		if got := splitLines(string(body)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestHistoryBound checks that a channel serves its newest -history
// messages.
func TestHistoryBound(t *testing.T) {
	s := start(t, "-history", "50")
	ch := s.createChannel(t, "bound", "app")
	var msgs []string
	for i := 1; i <= 80; i++ {
		msgs = append(msgs, fmt.Sprintf("<134>1 2024-07-01T00:00:00.000000Z host %s web.1 - - n %d", ch.Tokens["app"], i))
	}
	s.mustPostLogs(t, ch.Tokens["app"], msgs...)
	for _, num := range []int{1500, -1} {
		got := s.historyLines(t, ch.ID, num)
		if len(got) != 50 || !strings.HasSuffix(got[0], ": n 31") || !strings.HasSuffix(got[49], ": n 80") {
			t.Errorf("num %d: %d lines %q … %q, want the newest 50 (n 31 … n 80)", num, len(got), first(got), tailLines(got, 1))
		}
	}
}

func first(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[0]
}

var l11RE = regexp.MustCompile(`^\S+ logplex\[1\]: Error L11 \(Tail buffer overflow\) -> This tail session dropped (\d+) messages since \S+\.$`)

// TestSlowTailL11 opens a tail that does not read while many messages are
// ingested (more than the socket buffers and the retention hold). Ingest
// is not held up; when the client reads again it gets L11 lines whose
// counts exactly cover the messages it missed.
func TestSlowTailL11(t *testing.T) {
	s := start(t, "-history", "200")
	ch := s.createChannel(t, "slow", "app")
	tok := ch.Tokens["app"]
	u := s.newSession(t, map[string]any{"channel_id": ch.ID, "num": "1", "tail": true})

	// A client with a tiny receive buffer that reads the headers and then
	// stops reading.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", s.Addrs.API)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path := u[len("http://"+s.Addrs.API):]
	write(t, conn, "GET "+path+" HTTP/1.1\r\nHost: "+s.Addrs.API+"\r\n\r\n")
	br := bufio.NewReaderSize(conn, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("tail GET: %v %v", resp, err)
	}

	// Ingest 40,000 messages of about 200 bytes (8 MB) while it sleeps.
	const total, batch = 40000, 500
	padding := strings.Repeat("p", 150)
	for i := 1; i <= total; i += batch {
		msgs := make([]string, 0, batch)
		for j := i; j < i+batch; j++ {
			msgs = append(msgs, fmt.Sprintf("<134>1 2024-01-02T03:04:05.000000Z host %s web.1 - - seq %d %s", tok, j, padding))
		}
		s.mustPostLogs(t, tok, msgs...)
	}

	// Now read everything: seq lines and L11 lines must account for every
	// message exactly.
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	seqLine := regexp.MustCompile(`^2024-01-02T03:04:05\.000000Z app\[web\.1\]: seq (\d+) p+$`)
	var prev int64 = -1 // last seq accounted for
	var missed int64    // pending L11 count
	l11s, lines := 0, 0
	for sc.Scan() {
		line := sc.Text()
		lines++
		if m := l11RE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			missed += n
			l11s++
			continue
		}
		m := seqLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected line %.200q", line)
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		if prev >= 0 && n != prev+1+missed {
			t.Fatalf("seq %d after seq %d with %d reported missed: the L11 count is not exact", n, prev, missed)
		}
		if prev < 0 && missed > 0 && n != 1+missed {
			t.Fatalf("first seq %d with %d reported missed", n, missed)
		}
		prev, missed = n, 0
		if n == total {
			break
		}
	}
	if prev != total {
		t.Fatalf("tail stopped at seq %d (err %v), want %d", prev, sc.Err(), total)
	}
	if l11s == 0 {
		t.Errorf("no L11 line although the client did not read %d messages (retention 200)", total)
	}
	t.Logf("read %d lines, %d L11 notices", lines, l11s)
}

// TestShutdownWithOpenTail checks that SIGTERM ends open tail streams and
// the process exits cleanly and promptly.
func TestShutdownWithOpenTail(t *testing.T) {
	s := start(t)
	ch := s.createChannel(t, "shutdown", "app")
	s.mustPostLogs(t, ch.Tokens["app"], "<134>1 2024-01-01T00:00:00Z host "+ch.Tokens["app"]+" web.1 - - hi")
	plain := newLineReader(openStream(t, s.newSession(t, map[string]any{"channel_id": ch.ID, "tail": true})))
	sse := newSSEReader(openStream(t, s.newSession(t, map[string]any{"channel_id": ch.ID, "tail": true}), "Accept", "text/event-stream"))
	if l, _ := plain.next(t, 10*time.Second); l != "2024-01-01T00:00:00Z app[web.1]: hi" {
		t.Fatalf("tail line %q", l)
	}
	sse.next(t, 10*time.Second)
	started := time.Now()
	s.Stop() // fails unless the exit is clean within stopTimeout
	t.Logf("stopped in %v with two open tails", time.Since(started).Round(time.Millisecond))
	for {
		_, ok := plain.next(t, 5*time.Second)
		if !ok {
			break
		}
	}
}
