package drains

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// maxDiscard bounds the response body read to keep a connection: a longer
// body closes the connection instead.
const maxDiscard = 64 << 10

// httpClient POSTs logplex-1 batches over one kept-alive HTTP/1.1
// connection. It writes the request itself so that the headers go out in
// Logplex's order, and reads responses with net/http's parser. It is kept
// because it beats net/http's client (BenchmarkHTTPDelivery: about half
// the time per full batch, and far fewer allocations); the net/http
// version it is measured against lives in the benchmark.
type httpClient struct {
	d       dialer
	timeout time.Duration
	uri     string // request target: path and query
	host    string // Host header: as in the URL (port only when given)
	auth    string // Authorization header value, or ""
	token   string
	agent   string

	conn net.Conn
	tcp  net.Conn // the TCP connection under conn
	br   *bufio.Reader
	head []byte
	used time.Time // when conn last completed a request
}

// peekAfter is how long a kept-alive connection may sit unused before the
// client checks, with a non-blocking peek, whether the server closed it.
// Servers close idle connections after seconds, so a connection used more
// recently is trusted (and a stale one is still retried once on a fresh
// connection): a busy drain saves a system call per request.
const peekAfter = time.Second

func newHTTPClient(cfg *Config, d channels.Drain, u channels.DrainURL) *httpClient {
	https := u.URL.Scheme == "https"
	port := "80"
	if https {
		port = "443"
	}
	c := &httpClient{
		d:       newDialer(cfg, u, port, https, []string{"http/1.1"}),
		timeout: cfg.RequestTimeout,
		uri:     u.URL.RequestURI(),
		host:    u.URL.Host,
		token:   d.Token,
		agent:   cfg.UserAgent,
	}
	if ui := u.URL.User; ui != nil {
		pass, _ := ui.Password()
		c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(ui.Username()+":"+pass))
	}
	return c
}

func (c *httpClient) attempt(ctx context.Context, b *batch) (outcome, error) {
	for try := 0; ; try++ {
		fresh := false
		if c.conn != nil && time.Since(c.used) > peekAfter && peerClosed(c.tcp) {
			c.closeConn() // the server closed the idle connection
		}
		if c.conn == nil {
			conn, tcp, err := c.d.dial(ctx)
			if err != nil {
				return outError, err
			}
			c.conn, c.tcp, fresh = conn, tcp, true
			if c.br == nil {
				c.br = bufio.NewReaderSize(conn, 4096)
			} else {
				c.br.Reset(conn)
			}
		}
		code, err := c.roundTrip(b)
		if err != nil {
			c.closeConn()
			if !fresh && try == 0 && isStale(err) {
				continue // the server closed the idle connection: once more on a new one
			}
			return outError, err
		}
		switch {
		case code >= 200 && code < 300:
			return outOK, nil
		case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
			return outRetry, fmt.Errorf("HTTP %d", code)
		default:
			return outRejected, fmt.Errorf("HTTP %d", code)
		}
	}
}

// roundTrip sends b and reads the final response, discarding its body.
func (c *httpClient) roundTrip(b *batch) (int, error) {
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	c.head = c.appendHead(c.head[:0], b)
	bufs := net.Buffers{c.head, b.body}
	if _, err := bufs.WriteTo(c.conn); err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	for {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			return 0, fmt.Errorf("read response: %w", err)
		}
		if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // 1xx interim response (no body)
		}
		// The status decides; a body that cannot be read (or is too long
		// to bother) only costs the connection.
		n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxDiscard+1))
		resp.Body.Close()
		if err != nil || resp.Close || n > maxDiscard {
			c.closeConn()
		}
		c.used = time.Now()
		return resp.StatusCode, nil
	}
}

// appendHead writes the request line and headers in Logplex's order.
func (c *httpClient) appendHead(h []byte, b *batch) []byte {
	h = append(h, "POST "...)
	h = append(h, c.uri...)
	h = append(h, " HTTP/1.1\r\nHost: "...)
	h = append(h, c.host...)
	if c.auth != "" {
		h = append(h, "\r\nAuthorization: "...)
		h = append(h, c.auth...)
	}
	h = append(h, "\r\nContent-Type: application/logplex-1\r\nLogplex-Msg-Count: "...)
	h = strconv.AppendInt(h, int64(b.frames), 10)
	h = append(h, "\r\nLogplex-Frame-Id: "...)
	h = append(h, b.frameID[:]...)
	h = append(h, "\r\nLogplex-Drain-Token: "...)
	h = append(h, c.token...)
	h = append(h, "\r\nUser-Agent: "...)
	h = append(h, c.agent...)
	h = append(h, "\r\nContent-Length: "...)
	h = strconv.AppendInt(h, int64(len(b.body)), 10)
	h = append(h, "\r\n\r\n"...)
	return h
}

func (c *httpClient) closeConn() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *httpClient) close() { c.closeConn() }
