package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// collector records which sequence numbers came back and how late.
type collector struct {
	n        int
	seen     []atomic.Uint64 // bitset of sequence numbers
	received atomic.Int64
	dups     atomic.Int64
	reported atomic.Int64 // drops announced in band (L10, L11)
	start    atomic.Int64 // unix ns of the first send
	last     atomic.Int64 // unix ns of the last arrival
	mu       sync.Mutex
	lat      []int32 // microseconds, sampled
}

func newCollector(n int) *collector {
	return &collector{n: n, seen: make([]atomic.Uint64, (n+63)/64)}
}

// scanner finds markers in a byte stream, carrying a marker split across
// reads over to the next one.
type scanner struct {
	c     *collector
	carry []byte
	lat   []int32
	every int
}

func (c *collector) newScanner() *scanner {
	every := c.n / 2_000_000 // keep at most ~2M latency samples
	if every < 1 {
		every = 1
	}
	return &scanner{c: c, every: every}
}

func (s *scanner) feed(b []byte) {
	if len(s.carry) > 0 {
		s.carry = append(s.carry, b...)
		b = s.carry
	}
	now := time.Now().UnixNano()
	var got int64
	i := 0
	for {
		k := bytes.Index(b[i:], []byte(seqMark))
		if k < 0 || i+k+markLen > len(b) {
			break
		}
		at := i + k + len(seqMark)
		seq, ok1 := parseHex16(b[at : at+16])
		ts, ok2 := parseDec19(b[at+16+len(tsMark) : at+16+len(tsMark)+19])
		i = at
		if !ok1 || !ok2 || seq >= uint64(s.c.n) || string(b[at+16:at+16+len(tsMark)]) != tsMark {
			continue
		}
		w, bit := &s.c.seen[seq/64], uint64(1)<<(seq%64)
		if w.Or(bit)&bit != 0 {
			s.c.dups.Add(1)
			continue
		}
		got++
		if seq%uint64(s.every) == 0 {
			s.lat = append(s.lat, int32(min((now-ts)/1000, 1<<31-1)))
		}
	}
	if len(s.lat) > 0 {
		s.c.mu.Lock()
		s.c.lat = append(s.c.lat, s.lat...)
		s.c.mu.Unlock()
		s.lat = s.lat[:0]
	}
	if got > 0 {
		s.c.received.Add(got)
		for {
			l := s.c.last.Load()
			if now <= l || s.c.last.CompareAndSwap(l, now) {
				break
			}
		}
	}
	s.c.reported.Add(countReported(b, i))
	// keep the bytes that could start a marker not yet complete
	keep := len(b) - (markLen - 1)
	if keep < i {
		keep = i
	}
	if keep < 0 {
		keep = 0
	}
	s.carry = append(s.carry[:0], b[keep:]...)
}

func (s *scanner) done() {
	s.c.mu.Lock()
	s.c.lat = append(s.c.lat, s.lat...)
	s.c.mu.Unlock()
	s.lat = nil
}

// countReported adds up the N of in-band loss notices in b[from:] —
// "Error L10 (output buffer overflow): N messages dropped" and "Error L11
// (Tail buffer overflow) -> This tail session dropped N messages" —
// skipping notices that start in the part of b carried to the next feed.
func countReported(b []byte, from int) int64 {
	var total int64
	limit := len(b) - (markLen - 1)
	for _, pat := range [][]byte{[]byte("): "), []byte("session dropped ")} {
		for i := 0; ; {
			k := bytes.Index(b[i:], pat)
			if k < 0 || i+k >= limit {
				break
			}
			j := i + k + len(pat)
			i = j
			n, digits := int64(0), 0
			for j < len(b) && b[j] >= '0' && b[j] <= '9' && digits < 18 {
				n, j, digits = n*10+int64(b[j]-'0'), j+1, digits+1
			}
			if digits > 0 && bytes.HasPrefix(b[j:], []byte(" messages dropped")) || digits > 0 && bytes.HasPrefix(b[j:], []byte(" messages since")) {
				total += n
			}
		}
	}
	return total
}

func parseHex16(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

func parseDec19(b []byte) (int64, bool) {
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// readStream feeds everything read from r (a tail session, a sink
// connection) to a scanner until r ends.
func (c *collector) readStream(r io.Reader) {
	s := c.newScanner()
	defer s.done()
	buf := make([]byte, 256<<10)
	br := bufio.NewReaderSize(r, 256<<10)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			s.feed(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// wait returns when every message arrived, nothing arrived for idle, or
// ctx is done.
func (c *collector) wait(ctx context.Context, idle time.Duration) {
	last, lastChange := c.received.Load(), time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for c.received.Load()+c.reported.Load() < int64(c.n) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r := c.received.Load(); r != last {
			last, lastChange = r, time.Now()
		} else if time.Since(lastChange) > idle {
			return
		}
	}
	time.Sleep(50 * time.Millisecond) // let scanners hand over their samples
}

func (c *collector) latencies() (p50, p99, max float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lat) == 0 {
		return 0, 0, 0
	}
	sort.Slice(c.lat, func(i, j int) bool { return c.lat[i] < c.lat[j] })
	at := func(q float64) float64 { return float64(c.lat[int(q*float64(len(c.lat)-1))]) / 1000 }
	return at(0.50), at(0.99), float64(c.lat[len(c.lat)-1]) / 1000
}

// startSink listens on addr: a raw TCP sink (syslog drains, peers'
// forwarding) or, for httpSink, an HTTP endpoint taking logplex-1 POSTs.
func startSink(addr string, httpSink bool, c *collector) (string, func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	var wg sync.WaitGroup
	if httpSink {
		var scanners sync.Pool
		scanners.New = func() any { return c.newScanner() }
		var all []*scanner
		var mu sync.Mutex
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			s := scanners.Get().(*scanner)
			s.feed(body)
			s.carry = s.carry[:0] // a body holds whole messages
			mu.Lock()
			all = append(all, s)
			mu.Unlock()
			scanners.Put(s)
			w.WriteHeader(http.StatusOK)
		})}
		wg.Add(1)
		go func() { defer wg.Done(); srv.Serve(l) }()
		return l.Addr().String(), func() {
			srv.Close()
			wg.Wait()
			seen := map[*scanner]bool{}
			for _, s := range all {
				if !seen[s] {
					seen[s] = true
					s.done()
				}
			}
		}, nil
	}
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); c.readStream(conn) }()
		}
	}()
	return l.Addr().String(), func() {
		l.Close()
		mu.Lock()
		for _, conn := range conns {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}
