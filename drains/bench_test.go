package drains

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// benchMessage is a 200-byte cooked RFC 5424 message.
func benchMessage() []byte {
	m := "<134>1 2024-01-02T03:04:05.000006Z myhost app web.1 - - "
	return []byte(m + strings.Repeat("x", 200-len(m)))
}

func benchRead(n int) (channels.Cursor, *channels.Records, channels.ReadResult) {
	var recs channels.Records
	msg := benchMessage()
	for i := range n {
		recs.Add(uint64(i+1), int64(i), msg)
	}
	return channels.Cursor{Epoch: "e", Offset: 1}, &recs, channels.ReadResult{Epoch: "e", Next: channels.Cursor{Epoch: "e", Offset: uint64(n + 1)}}
}

func benchmarkEncode(b *testing.B, f *format) {
	from, recs, res := benchRead(f.target / 150)
	var bt batch
	bt.build(f, from, recs, res, 0, time.Time{}, goldenNow)
	b.ReportAllocs()
	b.SetBytes(int64(recs.Bytes()))
	b.ResetTimer()
	for range b.N {
		bt.build(f, from, recs, res, 0, time.Time{}, goldenNow)
	}
	b.ReportMetric(float64(b.N)*float64(bt.data)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkHTTPBatchEncode(b *testing.B) {
	benchmarkEncode(b, &format{http: true, token: goldenToken, target: DefaultBatchBytes})
}

func BenchmarkSyslogEncode(b *testing.B) {
	benchmarkEncode(b, &format{token: goldenToken, target: maxSyslogWrite})
}

// countFrames returns the count of an L10 frame.
func countFrames(frame []byte) (lost uint64, isL10 bool) {
	const p = "Error L10 (output buffer overflow): "
	i := bytes.Index(frame, []byte(p))
	if i < 0 {
		return 0, false
	}
	rest := frame[i+len(p):]
	j := bytes.IndexByte(rest, ' ')
	n, _ := strconv.ParseUint(string(rest[:j]), 10, 64)
	return n, true
}

// counts is what a benchmark receiver got.
type counts struct{ data, lost atomic.Int64 }

func (c *counts) frame(f []byte) {
	if lost, ok := countFrames(f); ok {
		c.lost.Add(int64(lost))
	} else {
		c.data.Add(1)
	}
}

// benchAppend appends b.N messages in batches of 100, never more than
// benchWindow ahead of the receiver (so that the drain's throughput is
// measured, not retention), and waits until the receiver has them all.
func benchAppend(b *testing.B, e *env, c *counts) {
	const benchWindow = 200000
	batch := &channels.Batch{ChannelID: e.ch.ID}
	msg := benchMessage()
	accounted := func() int64 { return c.data.Load() + c.lost.Load() }
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; {
		for int64(i)-accounted() > benchWindow {
			time.Sleep(50 * time.Microsecond)
		}
		batch.Reset()
		batch.Time = time.Now().UnixNano()
		for ; batch.Len() < 100 && i < b.N; i++ {
			batch.Add(msg)
		}
		if err := e.log.Append(context.Background(), []*channels.Batch{batch}); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for accounted() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("receiver accounted for %d of %d messages", accounted(), b.N)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(c.data.Load())/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(c.lost.Load()), "lost")
}

func benchConfig() Config {
	cfg := testConfig()
	cfg.Retention = channels.Retention{Count: 1 << 20}
	return cfg
}

// BenchmarkDrainSyslogTCP: MemLog → manager → syslog TCP receiver.
func BenchmarkDrainSyslogTCP(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var got counts
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 256<<10)
				buf := make([]byte, 64<<10)
				for {
					s, err := br.ReadSlice(' ')
					if err != nil {
						return
					}
					n, _ := strconv.Atoi(string(s[:len(s)-1]))
					if _, err := io.ReadFull(br, buf[:n]); err != nil {
						return
					}
					got.frame(buf[:n])
				}
			}()
		}
	}()
	e := newEnv(b, benchConfig())
	e.start()
	d := e.addDrain("syslog://" + l.Addr().String())
	e.waitStarted(d)
	benchAppend(b, e, &got)
}

// BenchmarkDrainHTTP: MemLog → manager → HTTP receiver.
func BenchmarkDrainHTTP(b *testing.B) {
	var got counts
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for len(body) > 0 {
			sp := bytes.IndexByte(body, ' ')
			n, _ := strconv.Atoi(string(body[:sp]))
			got.frame(body[sp+1 : sp+1+n])
			body = body[sp+1+n:]
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	e := newEnv(b, benchConfig())
	e.start()
	d := e.addDrain(srv.URL + "/")
	e.waitStarted(d)
	benchAppend(b, e, &got)
}
