package forward

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// sendLoop delivers the source's batches in order, one at a time, and
// records each acknowledged offset. After a hard stop it only drains.
func (s *source) sendLoop() {
	for b := range s.q {
		ok := s.fw.deliver(b)
		s.fw.putBody(b.body)
		if !ok {
			for range s.q {
			}
			return
		}
		s.fw.m.linesAcked.Add(int64(b.lines))
		s.fw.m.batches.Add(1)
		if s.st == nil {
			continue
		}
		s.fw.state.mu.Lock()
		if s.st.Gen == b.gen && b.end > s.st.Acked {
			s.st.Acked = b.end
			s.st.Seen = time.Now().Unix()
			s.fw.state.dirty = true
			s.acked.Store(b.end)
		}
		s.fw.state.mu.Unlock()
	}
}

// deliver sends b until the server acknowledges it (true), or gives up on
// a hard stop or an answer that will never change (false).
func (fw *Forwarder) deliver(b *batch) bool {
	if b.timeCut && b.src.st != nil {
		// The batch's end is not implied by its start: write it down before
		// sending, so that after a crash the same batch is sent again.
		fw.state.mu.Lock()
		ok := b.src.st.Gen == b.gen
		if ok {
			b.src.st.Sent = b.end
		}
		fw.state.mu.Unlock()
		if ok {
			fw.saveState()
		}
	}
	backoff := 100 * time.Millisecond
	var timer *time.Timer
	for {
		code, retryAfter, msg, err := fw.post(b)
		if err == nil && code/100 == 2 {
			return true
		}
		select {
		case <-fw.hardStop:
			return false
		default:
		}
		if err == nil && permanent(code) {
			fw.fail(fmt.Errorf("the server refused a batch of %s with %d %s%s: not retrying (check the -url and its token)",
				b.src.name, code, http.StatusText(code), msg))
			return false
		}
		fw.m.retries.Add(1)
		if fw.m.retries.Load() == 1 || fw.m.retries.Load()%100 == 0 {
			why := fmt.Sprintf("%d %s", code, http.StatusText(code))
			if err != nil {
				why = err.Error()
			}
			fw.logf("sending %s failed (%s); retrying (%d retries so far)", b.src.name, why, fw.m.retries.Load())
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		wait = max(wait, retryAfter)
		backoff = min(backoff*2, fw.cfg.MaxBackoff)
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-fw.hardStop:
			return false
		}
	}
}

// permanent reports whether an answer will be the same on every retry.
func permanent(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// post sends one batch; it returns the status, Retry-After, a short text
// of the answer, or a transport error.
func (fw *Forwarder) post(b *batch) (int, time.Duration, string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := context.AfterFunc(hardCtx{fw.hardStop}, cancel)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fw.url, bytes.NewReader(b.body))
	if err != nil {
		return 0, 0, "", err
	}
	req.Header.Set("Content-Type", "application/logplex-1")
	if fw.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("Logplex-Msg-Count", strconv.Itoa(b.lines))
	req.Header.Set("Idempotency-Key", b.key)
	req.Header.Set("User-Agent", "plexus-forward")
	if fw.auth != "" {
		req.Header.Set("Authorization", fw.auth)
	}
	resp, err := fw.client.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	fw.m.bytesSent.Add(int64(len(b.body)))
	var ra time.Duration
	if v := resp.Header.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			ra = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			ra = time.Until(t)
		}
	}
	msg := ""
	if t := strings.TrimSpace(string(body)); t != "" {
		msg = ": " + t
	}
	return resp.StatusCode, ra, msg, nil
}

// hardCtx is a context that is done when the forwarder stops hard.
type hardCtx struct{ ch chan struct{} }

func (h hardCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (h hardCtx) Done() <-chan struct{}       { return h.ch }
func (h hardCtx) Value(any) any               { return nil }
func (h hardCtx) Err() error {
	select {
	case <-h.ch:
		return context.Canceled
	default:
		return nil
	}
}

// getBody returns an empty batch body buffer; putBody gives one back.
func (fw *Forwarder) getBody() []byte {
	if b, ok := fw.bodies.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, min(fw.cfg.BatchBytes*3/2+4096, 4<<20))
}

func (fw *Forwarder) putBody(b []byte) {
	if cap(b) > 8<<20 {
		return
	}
	fw.bodies.Put(&b)
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// metricsHandler serves the forwarder's counters for Prometheus.
func (fw *Forwarder) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	counter := func(name, help string, v func() int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v()) }))
	}
	counter("plexus_forward_lines_read_total", "Lines read and put into batches.", fw.m.linesRead.Load)
	counter("plexus_forward_lines_acked_total", "Lines the server acknowledged.", fw.m.linesAcked.Load)
	counter("plexus_forward_lines_dropped_total", "Lines dropped (-drop) because sending was behind.", fw.m.dropped.Load)
	counter("plexus_forward_lines_split_total", "Pieces of over-long lines.", fw.m.split.Load)
	counter("plexus_forward_batches_total", "Batches acknowledged.", fw.m.batches.Load)
	counter("plexus_forward_retries_total", "Requests retried.", fw.m.retries.Load)
	counter("plexus_forward_truncations_total", "Files found truncated (copytruncate).", fw.m.truncations.Load)
	counter("plexus_forward_sent_bytes_total", "Request body bytes sent.", fw.m.bytesSent.Load)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "plexus_forward_lag_bytes", Help: "Bytes of the followed files not yet acknowledged.",
	}, func() float64 {
		fw.mu.Lock()
		defer fw.mu.Unlock()
		var n int64
		for _, s := range fw.sources {
			n += max(0, s.size.Load()-s.acked.Load())
		}
		return float64(n)
	}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}
