package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/test/redistest"
)

// BenchmarkLogAppend appends 200-byte messages and waits until they are
// written to Redis; msgs/s counts written messages. Variants: messages per
// Append call, channels written, concurrent appenders.
func BenchmarkLogAppend(b *testing.B) {
	srv := redistest.Start(b)
	msg := []byte("<134>1 2024-01-01T00:00:00Z host app web.1 - - " + strings.Repeat("x", 200-48))
	for _, bc := range []struct{ batch, chans, workers int }{
		{1, 1, 4}, {100, 1, 4}, {100, 100, 4}, {100, 1, 1},
	} {
		b.Run(fmt.Sprintf("batch=%d/channels=%d/workers=%d", bc.batch, bc.chans, bc.workers), func(b *testing.B) {
			l := openTestLog(b, LogConfig{}, srv)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			per := (b.N + bc.workers - 1) / bc.workers
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range bc.workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					batch := &channels.Batch{}
					for i := 0; i < per; {
						batch.ChannelID = fmt.Sprintf("bench-%d", (w+i)%bc.chans)
						batch.Reset()
						for j := 0; j < bc.batch && i < per; j++ {
							batch.Add(msg)
							i++
						}
						if err := l.Append(context.Background(), []*channels.Batch{batch}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := l.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(per*bc.workers)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkLogRead reads a channel of 200-byte messages sequentially in
// pieces of about maxBytes (a syslog drain reads ~4 KiB, a session 1 MiB).
func BenchmarkLogRead(b *testing.B) {
	srv := redistest.Start(b)
	l := openTestLog(b, LogConfig{Default: channels.Retention{Count: 20000}}, srv)
	msg := []byte("<134>1 2024-01-01T00:00:00Z host app web.1 - - " + strings.Repeat("x", 200-48))
	batch := &channels.Batch{ChannelID: "read"}
	for range 20000 {
		batch.Add(msg)
	}
	if err := l.Append(context.Background(), []*channels.Batch{batch}); err != nil {
		b.Fatal(err)
	}
	if err := l.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, maxBytes := range []int{4 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("maxBytes=%d", maxBytes), func(b *testing.B) {
			var r channels.Records
			b.ReportAllocs()
			cur := channels.Cursor{Offset: 1}
			start := time.Now()
			n := 0
			for range b.N {
				res, err := l.Read(context.Background(), "read", cur, 0, maxBytes, &r)
				if err != nil {
					b.Fatal(err)
				}
				n += r.Len()
				cur = res.Next
				if r.Len() == 0 {
					cur = channels.Cursor{Offset: 1}
				}
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkLogAppendFollow appends 200-byte messages on one node while a
// follower on another node reads them (Read/Wait, ~100 KiB per read, as
// an HTTP drain does); msgs/s counts messages the follower received.
func BenchmarkLogAppendFollow(b *testing.B) {
	srv := redistest.Start(b)
	w := openTestLog(b, LogConfig{Default: channels.Retention{Count: 200000}}, srv)
	r := openTestLog(b, LogConfig{Default: channels.Retention{Count: 200000}}, srv)
	msg := []byte("<134>1 2024-01-01T00:00:00Z host app web.1 - - " + strings.Repeat("x", 200-48))
	ch := fmt.Sprintf("follow-%d", b.N)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		var recs channels.Records
		cur := channels.Cursor{Offset: 1}
		for cur.Offset <= uint64(b.N) {
			res, err := r.Read(context.Background(), ch, cur, 0, 100<<10, &recs)
			if err != nil {
				done <- err
				return
			}
			if res.Missed > 0 {
				done <- fmt.Errorf("follower missed %d", res.Missed)
				return
			}
			cur = res.Next
			if recs.Len() == 0 {
				if err := r.Wait(context.Background(), ch, cur); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	batch := &channels.Batch{ChannelID: ch}
	for i := 0; i < b.N; {
		batch.Reset()
		for j := 0; j < 100 && i < b.N; j++ {
			batch.Add(msg)
			i++
		}
		if err := w.Append(context.Background(), []*channels.Batch{batch}); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
