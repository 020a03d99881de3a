package drains

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// syslogClient writes octet-counted frames to a syslog receiver over TCP or
// TLS. A completed write is the acknowledgement. What the peer sends is read
// and discarded; a connection the peer closed is replaced before the next
// write.
type syslogClient struct {
	d       dialer
	timeout time.Duration

	conn net.Conn
	tcp  net.Conn     // the TCP connection under conn
	dead *atomic.Bool // set by the connection's reader when it ends
}

func newSyslogClient(cfg *Config, u channels.DrainURL) *syslogClient {
	port := fmt.Sprint(channels.DefaultSyslogPort)
	if u.Kind == channels.DrainSyslogTLS {
		port = fmt.Sprint(channels.DefaultSyslogTLSPort)
	}
	return &syslogClient{
		d:       newDialer(cfg, u, port, u.Kind == channels.DrainSyslogTLS, nil),
		timeout: cfg.RequestTimeout,
	}
}

func (c *syslogClient) attempt(ctx context.Context, b *batch) (outcome, error) {
	if c.conn != nil && (c.dead.Load() || peerClosed(c.tcp)) {
		c.closeConn() // the peer closed it: what we wrote now would be lost
	}
	if c.conn == nil {
		conn, tcp, err := c.d.dial(ctx)
		if err != nil {
			return outError, err
		}
		c.conn, c.tcp, c.dead = conn, tcp, new(atomic.Bool)
		go discardReads(conn, c.dead)
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		c.closeConn()
		return outError, err
	}
	if _, err := c.conn.Write(b.body); err != nil {
		c.closeConn()
		return outError, fmt.Errorf("write: %w", err)
	}
	return outOK, nil
}

// discardReads reads from conn until it fails (peer closed, or we closed
// it), then marks it dead.
func discardReads(conn net.Conn, dead *atomic.Bool) {
	var buf [512]byte
	for {
		if _, err := conn.Read(buf[:]); err != nil {
			dead.Store(true)
			return
		}
	}
}

func (c *syslogClient) closeConn() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *syslogClient) close() { c.closeConn() }
