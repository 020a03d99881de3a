package e2e

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentWriters has several TCP connections, a UDP sender and HTTP
// posts write to one channel at once: every message is stored exactly once,
// and each sender's messages keep their order.
func TestConcurrentWriters(t *testing.T) {
	s := start(t, "-history", "100000")
	ch := s.createChannel(t, "concurrent", "app")
	tok := ch.Tokens["app"]
	const conns, perConn, udpN, posts, perPost = 6, 1000, 300, 20, 50
	msg := func(sender string, i int) string {
		return fmt.Sprintf("<134>1 2024-01-01T00:00:00.000000Z host %s %s - - n %d", tok, sender, i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns+2)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			conn, err := net.Dial("tcp", s.Addrs.SyslogTCP)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			var b strings.Builder
			for i := 1; i <= perConn; i++ {
				b.WriteString(frame(msg("tcp."+strconv.Itoa(c), i)))
				if i%100 == 0 {
					if _, err := conn.Write([]byte(b.String())); err != nil {
						errs <- err
						return
					}
					b.Reset()
				}
			}
		}(c)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := net.Dial("udp", s.Addrs.SyslogUDP)
		if err != nil {
			errs <- err
			return
		}
		defer conn.Close()
		for i := 1; i <= udpN; i++ {
			if _, err := conn.Write([]byte(msg("udp", i))); err != nil {
				errs <- err
				return
			}
			if i%20 == 0 {
				time.Sleep(time.Millisecond) // stay far below the socket buffer
			}
		}
	}()
	for p := 0; p < posts; p++ {
		var batch []string
		for i := 1; i <= perPost; i++ {
			batch = append(batch, msg("http", p*perPost+i))
		}
		s.mustPostLogs(t, tok, batch...)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("sender: %v", err)
	}

	total := conns*perConn + udpN + posts*perPost
	var lines []string
	waitFor(t, 20*time.Second, fmt.Sprintf("%d messages", total), func() (bool, string) {
		lines = splitLines(s.history(t, ch.ID, -1))
		return len(lines) >= total, fmt.Sprintf("%d lines", len(lines))
	})
	re := regexp.MustCompile(`^2024-01-01T00:00:00\.000000Z app\[(\S+)\]: n (\d+)$`)
	next := map[string]int{}
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected line %q", l)
		}
		n, _ := strconv.Atoi(m[2])
		if m[1] == "udp" {
			next[m[1]]++ // datagrams may be reordered between readers
			continue
		}
		if n != next[m[1]]+1 {
			t.Fatalf("sender %s: n %d after %d", m[1], n, next[m[1]])
		}
		next[m[1]] = n
	}
	if len(lines) != total {
		t.Errorf("%d lines, want %d: per sender %v", len(lines), total, next)
	}
	if next["udp"] != udpN {
		t.Errorf("%d of %d datagrams stored", next["udp"], udpN)
	}
}
