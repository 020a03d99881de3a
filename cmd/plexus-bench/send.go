package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// message layout: a fixed RFC 5424 header, the token (or app name), then
// "bseq=<16 hex> bts=<19 digits> " and padding up to -size bytes.
const (
	seqMark = "bseq="
	tsMark  = " bts="
	markLen = len(seqMark) + 16 + len(tsMark) + 19 // 45
)

// template builds one message for token and returns it with the offsets of
// the sequence and timestamp digits.
func template(token string, size int) (msg []byte, seqAt, tsAt int) {
	var b bytes.Buffer
	b.WriteString("<134>1 2026-11-21T10:00:00.000000Z bench.host ")
	b.WriteString(token)
	b.WriteString(" web.1 - - ")
	b.WriteString(seqMark)
	seqAt = b.Len()
	b.WriteString("0000000000000000")
	b.WriteString(tsMark)
	tsAt = b.Len()
	b.WriteString("0000000000000000000 ")
	for b.Len() < size {
		b.WriteByte('x')
	}
	return b.Bytes(), seqAt, tsAt
}

func putHex16(dst []byte, v uint64) {
	const hexd = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst[i] = hexd[v&15]
		v >>= 4
	}
}

func putDec19(dst []byte, v int64) {
	for i := 18; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// pacer spreads a connection's messages over time when -rate is set.
type pacer struct {
	rate  float64 // msgs/s for this connection; 0 = unlimited
	start time.Time
	sent  int
}

// allow returns how many messages may go now (at most max), sleeping
// until at least one may.
func (p *pacer) allow(max int) int {
	if p.rate == 0 {
		return max
	}
	for {
		due := int(p.rate*time.Since(p.start).Seconds()) - p.sent
		if due > 0 {
			if due > max {
				due = max
			}
			p.sent += due
			return due
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// send runs -conns senders, each sending its contiguous share of sequence
// numbers, messages spread round-robin over tokens.
func send(ctx context.Context, o options, tokens []string) error {
	var wg sync.WaitGroup
	errs := make(chan error, o.conns)
	per := o.n / o.conns
	for c := 0; c < o.conns; c++ {
		lo, hi := c*per, (c+1)*per
		if c == o.conns-1 {
			hi = o.n
		}
		p := &pacer{start: time.Now()}
		if o.rate > 0 {
			p.rate = float64(o.rate) / float64(o.conns)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch o.proto {
			case "tcp":
				err = sendStream(ctx, o, tokens, lo, hi, p, true)
			case "udp":
				err = sendStream(ctx, o, tokens, lo, hi, p, false)
			case "http":
				err = sendHTTP(ctx, o, tokens, lo, hi, p)
			default:
				err = fmt.Errorf("unknown -proto %q", o.proto)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

type tmpl struct {
	msg          []byte
	seqAt, tsAt  int
	framedPrefix []byte // "LEN "
}

func templates(tokens []string, size int) []tmpl {
	ts := make([]tmpl, len(tokens))
	for i, tok := range tokens {
		m, s, t := template(tok, size)
		ts[i] = tmpl{msg: m, seqAt: s, tsAt: t, framedPrefix: []byte(strconv.Itoa(len(m)) + " ")}
	}
	return ts
}

func sendStream(ctx context.Context, o options, tokens []string, lo, hi int, p *pacer, tcp bool) error {
	network := "udp"
	if tcp {
		network = "tcp"
	}
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, o.target)
	if err != nil {
		return err
	}
	defer conn.Close()
	ts := templates(tokens, o.size)
	buf := make([]byte, 0, o.batch*(o.size+8))
	for seq := lo; seq < hi; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n := p.allow(min(o.batch, hi-seq))
		var now [19]byte // one send time per batch, formatted once
		putDec19(now[:], time.Now().UnixNano())
		buf = buf[:0]
		for i := 0; i < n; i++ {
			t := &ts[(seq+i)%len(ts)]
			start := len(buf)
			if tcp {
				buf = append(buf, t.framedPrefix...)
			}
			body := len(buf)
			buf = append(buf, t.msg...)
			putHex16(buf[body+t.seqAt:], uint64(seq+i))
			copy(buf[body+t.tsAt:], now[:])
			if !tcp {
				if _, err := conn.Write(buf[start:]); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		if tcp {
			if _, err := conn.Write(buf); err != nil {
				return err
			}
		}
		seq += n
	}
	return nil
}

func sendHTTP(ctx context.Context, o options, tokens []string, lo, hi int, p *pacer) error {
	ts := templates(tokens, o.size)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	auth := make([]string, len(tokens))
	for i, tok := range tokens {
		auth[i] = "Basic " + base64.StdEncoding.EncodeToString([]byte("token:"+tok))
	}
	buf := make([]byte, 0, o.batch*(o.size+8))
	for seq, req := lo, 0; seq < hi; req++ {
		n := p.allow(min(o.batch, hi-seq))
		k := req % len(ts) // one token per request (token auth)
		t := &ts[k]
		var now [19]byte
		putDec19(now[:], time.Now().UnixNano())
		buf = buf[:0]
		for i := 0; i < n; i++ {
			buf = append(buf, t.framedPrefix...)
			body := len(buf)
			buf = append(buf, t.msg...)
			putHex16(buf[body+t.seqAt:], uint64(seq+i))
			copy(buf[body+t.tsAt:], now[:])
		}
		r, err := http.NewRequestWithContext(ctx, "POST", o.logsURL, bytes.NewReader(buf))
		if err != nil {
			return err
		}
		r.Header.Set("Content-Type", "application/logplex-1")
		r.Header.Set("Logplex-Msg-Count", strconv.Itoa(n))
		r.Header.Set("Authorization", auth[k])
		resp, err := client.Do(r)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("POST /logs: %s", resp.Status)
		}
		seq += n
	}
	return nil
}
