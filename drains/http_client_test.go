package drains

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plexus-router/plexus/channels"
)

// cannedServer answers every request with resp; closeAfter closes the
// connection after each response.
func cannedServer(t *testing.T, resp string, closeAfter bool) (addr string, conns *atomic.Int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					n := -1
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
							n, _ = strconv.Atoi(strings.TrimSpace(v))
						}
						if line == "\r\n" {
							break
						}
					}
					if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
						return
					}
					io.WriteString(c, resp)
					if closeAfter {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String(), conns
}

func TestHTTPClientResponses(t *testing.T) {
	tests := []struct {
		name       string
		resp       string
		closeAfter bool
		want       outcome
		conns      int32 // after two attempts
	}{
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", false, outOK, 1},
		{"200 chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, outOK, 1},
		{"100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, outOK, 1},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", true, outOK, 2},
		{"server closes idle connection", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, outOK, 2},
		{"HTTP/1.0 body to EOF", "HTTP/1.0 200 OK\r\n\r\nbye", true, outOK, 2},
		{"408", "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n", false, outRetry, 1},
		{"429", "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n", false, outRetry, 1},
		{"503", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", false, outRetry, 1},
		{"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false, outRejected, 1},
		{"301", "HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n", false, outRejected, 1},
		{"garbage", "hello\r\n\r\n", true, outError, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, conns := cannedServer(t, tc.resp, tc.closeAfter)
			u, err := channels.ParseDrainURL("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig().withDefaults()
			c := newHTTPClient(&cfg, channels.Drain{Token: goldenToken}, u)
			defer c.close()
			f := &format{http: true, token: goldenToken, target: cfg.BatchBytes}
			var b batch
			from, recs, res := goldenRead()
			b.build(f, from, recs, res, 0, goldenNow, goldenNow)
			for i := range 2 {
				if o, err := c.attempt(context.Background(), &b); o != tc.want {
					t.Fatalf("attempt %d = %v (%v), want %v", i, o, err, tc.want)
				}
			}
			if n := conns.Load(); n != tc.conns {
				t.Errorf("%d connections, want %d", n, tc.conns)
			}
		})
	}
}
