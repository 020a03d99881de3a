package drains

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// netHTTPClient is the HTTP drain client written on net/http, kept here as
// the benchmark's reference: the hand-written httpClient stays only while
// it is faster (BenchmarkHTTPDelivery). It sends the same headers (in
// net/http's order, not Logplex's) and classifies responses the same way.
type netHTTPClient struct {
	client *http.Client
	url    *url.URL // without user info
	host   string
	header http.Header
}

func newNetHTTPClient(cfg *Config, d channels.Drain, u channels.DrainURL) *netHTTPClient {
	https := u.URL.Scheme == "https"
	port := "80"
	if https {
		port = "443"
	}
	dl := newDialer(cfg, u, port, https, nil)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     dl.tls,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	target := *u.URL
	target.User, target.Fragment = nil, ""
	h := http.Header{
		"Content-Type":        {"application/logplex-1"},
		"Logplex-Msg-Count":   {""},
		"Logplex-Frame-Id":    {""},
		"Logplex-Drain-Token": {d.Token},
		"User-Agent":          {cfg.UserAgent},
	}
	if ui := u.URL.User; ui != nil {
		pass, _ := ui.Password()
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(ui.Username(), pass)
		h["Authorization"] = r.Header["Authorization"]
	}
	return &netHTTPClient{
		client: &http.Client{Transport: tr, Timeout: cfg.RequestTimeout},
		url:    &target,
		host:   u.URL.Host,
		header: h,
	}
}

func (c *netHTTPClient) attempt(ctx context.Context, b *batch) (outcome, error) {
	// The header map is reused: the previous request's body was closed.
	c.header["Logplex-Msg-Count"][0] = strconv.Itoa(b.frames)
	c.header["Logplex-Frame-Id"][0] = string(b.frameID[:])
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           c.url,
		Host:          c.host,
		Header:        c.header,
		Body:          io.NopCloser(bytes.NewReader(b.body)),
		ContentLength: int64(len(b.body)),
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.body)), nil },
	}).WithContext(ctx)
	resp, err := c.client.Do(req)
	if err != nil {
		return outError, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxDiscard))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return outOK, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return outRetry, fmt.Errorf("HTTP %d", code)
	default:
		return outRejected, fmt.Errorf("HTTP %d", code)
	}
}

func (c *netHTTPClient) close() { c.client.CloseIdleConnections() }

// BenchmarkHTTPDelivery: one acknowledged request per op to a local
// net/http server, with the hand-written client and with net/http's, for a
// one-message batch and a full batch (DefaultBatchBytes of 200-byte
// messages). Allocations include the server's, the same for both.
func BenchmarkHTTPDelivery(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	u, err := channels.ParseDrainURL(srv.URL + "/logs")
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig().withDefaults()
	d := channels.Drain{ID: 1, Token: goldenToken}
	clients := []struct {
		name string
		open func() transport
	}{
		{"handwritten", func() transport { return newHTTPClient(&cfg, d, u) }},
		{"nethttp", func() transport { return newNetHTTPClient(&cfg, d, u) }},
	}
	for _, c := range clients {
		b.Run("client="+c.name, func(b *testing.B) {
			for _, n := range []int{1, DefaultBatchBytes / 200} {
				b.Run(fmt.Sprintf("msgs=%d", n), func(b *testing.B) {
					f := &format{http: true, token: goldenToken, target: cfg.BatchBytes}
					from, recs, res := benchRead(n)
					var bt batch
					bt.build(f, from, recs, res, 0, time.Time{}, goldenNow)
					t := c.open()
					defer t.close()
					ctx := context.Background()
					if o, err := t.attempt(ctx, &bt); o != outOK {
						b.Fatalf("attempt = %v, %v", o, err)
					}
					b.ReportAllocs()
					b.SetBytes(int64(len(bt.body)))
					b.ResetTimer()
					for range b.N {
						if o, err := t.attempt(ctx, &bt); o != outOK {
							b.Fatalf("attempt = %v, %v", o, err)
						}
					}
					b.ReportMetric(float64(b.N)*float64(bt.data)/b.Elapsed().Seconds(), "msgs/s")
				})
			}
		})
	}
}
