package main

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// stream renders n messages (as a tail session shows them) with an L11
// notice and an L10 frame among them.
func stream(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		m, seqAt, tsAt := template("app", 120)
		putHex16(m[seqAt:], uint64(i))
		putDec19(m[tsAt:], time.Now().UnixNano())
		b.WriteString(strconv.Itoa(len(m)) + " ")
		b.Write(m)
		if i == n/2 {
			b.WriteString("2026-11-21T10:00:00+00:00 logplex[1]: Error L11 (Tail buffer overflow) -> This tail session dropped 17 messages since 2026-11-21T09:59:59+00:00.\n")
			b.WriteString("142 <172>1 2026-11-21T10:00:00+00:00 host heroku logplex - Error L10 (output buffer overflow): 25 messages dropped since 2026-11-21T09:59:00+00:00.")
		}
	}
	return b.Bytes()
}

// The scanner finds every marker and notice once however the stream is
// split into reads.
func TestScannerSplitAnywhere(t *testing.T) {
	const n = 40
	data := stream(n)
	for _, chunk := range []int{1, 2, 3, 7, 44, 45, 46, 100, len(data)} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			c := newCollector(n)
			s := c.newScanner()
			for i := 0; i < len(data); i += chunk {
				s.feed(data[i:min(i+chunk, len(data))])
			}
			s.done()
			if got := c.received.Load(); got != n {
				t.Errorf("received %d, want %d", got, n)
			}
			if got := c.dups.Load(); got != 0 {
				t.Errorf("duplicates %d, want 0", got)
			}
			if got := c.reported.Load(); got != 17+25 {
				t.Errorf("reported %d, want 42 (L11 17 + L10 25)", got)
			}
			if p50, _, _ := c.latencies(); p50 < 0 {
				t.Errorf("negative latency %v", p50)
			}
		})
	}
}

func TestScannerDuplicates(t *testing.T) {
	data := stream(5)
	c := newCollector(5)
	s := c.newScanner()
	s.feed(data)
	s.feed(data)
	if c.received.Load() != 5 || c.dups.Load() != 5 {
		t.Errorf("received %d dups %d, want 5 and 5", c.received.Load(), c.dups.Load())
	}
}
