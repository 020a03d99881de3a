package drains

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// outcome classifies one delivery attempt.
type outcome int

const (
	outOK       outcome = iota // acknowledged
	outRejected                // permanently refused: drop the batch
	outRetry                   // refused for now (HTTP 408/429/5xx): retry
	outError                   // connect, TLS, send or receive failed: retry
)

// transport sends batches to one destination over at most one connection.
// attempt may use ctx only for connecting: a request that was sent runs to
// its end or to Config.RequestTimeout.
type transport interface {
	attempt(ctx context.Context, b *batch) (outcome, error)
	close()
}

func newTransport(cfg *Config, d channels.Drain, u channels.DrainURL) (transport, *format) {
	switch u.Kind {
	case channels.DrainHTTP:
		return newHTTPClient(cfg, d, u), &format{http: true, token: d.Token, target: cfg.BatchBytes}
	default:
		target := min(cfg.BatchBytes, maxSyslogWrite)
		return newSyslogClient(cfg, u), &format{token: d.Token, target: target}
	}
}

// dialer connects to one destination, with TLS when tls is set.
type dialer struct {
	addr    string
	tls     *tls.Config
	timeout time.Duration
}

func newDialer(cfg *Config, u channels.DrainURL, defaultPort string, useTLS bool, nextProtos []string) dialer {
	port := u.URL.Port()
	if port == "" {
		port = defaultPort
	}
	d := dialer{addr: net.JoinHostPort(u.URL.Hostname(), port), timeout: cfg.ConnectTimeout}
	if useTLS {
		d.tls = &tls.Config{
			RootCAs:            cfg.RootCAs,
			ServerName:         u.URL.Hostname(),
			InsecureSkipVerify: u.Insecure,
			MinVersion:         tls.VersionTLS12,
			NextProtos:         nextProtos,
			ClientSessionCache: tls.NewLRUClientSessionCache(4),
		}
	}
	return d
}

// dial connects; it returns the connection and the TCP connection under it
// (the same for plain TCP).
func (d *dialer) dial(ctx context.Context) (conn, tcp net.Conn, err error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	nd := net.Dialer{KeepAlive: 30 * time.Second}
	c, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", d.addr, err)
	}
	if d.tls == nil {
		return c, c, nil
	}
	tc := tls.Client(c, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("tls handshake %s: %w", d.addr, err)
	}
	return tc, c, nil
}

// certError returns the reason when err is a certificate validation
// failure.
func certError(err error) (string, bool) {
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) {
		return ve.Err.Error(), true
	}
	var (
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &ua):
		return ua.Error(), true
	case errors.As(err, &he):
		return he.Error(), true
	case errors.As(err, &ci):
		return ci.Error(), true
	}
	return "", false
}

// isStale reports whether err looks like a kept-alive connection that the
// peer had closed before it was used.
func isStale(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}
