package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Sink receives the frames of one connection (or one UDP reader goroutine).
// Its methods are called from one goroutine.
type Sink interface {
	// Frame hands over one message. msg is valid during the call only.
	Frame(msg []byte)
	// Flush is called after the frames of each read were handed over. It
	// may block (that is TCP back-pressure); an error closes the
	// connection. ctx is cancelled when a shutdown runs out of time.
	Flush(ctx context.Context) error
	// Close is called once, after the last Flush.
	Close()
}

// PeerSink is a Sink that wants to know the peer of its TCP or TLS
// connection (to name it when it reports bad input). SetRemote is called
// once, before the first Frame.
type PeerSink interface {
	Sink
	SetRemote(addr net.Addr)
}

// Handler makes a Sink for each connection; proto is "tcp", "tls" or "udp".
// NewSink is called from many goroutines.
type Handler interface {
	NewSink(proto string) Sink
}

// Defaults and limits of the Server.
const (
	// DefaultMaxFrame is Logplex's maximum message size.
	DefaultMaxFrame = 10240
	udpReaders      = 2
	udpBufSize      = 64 << 10
	udpSocketBuffer = 4 << 20
	// udpMaxBatch bounds the datagrams handed over between two flushes.
	udpMaxBatch = 256
	// handshakeTimeout bounds a TLS handshake.
	handshakeTimeout = 10 * time.Second
	// logEvery rate-limits the log lines about bad input, per listener.
	logEvery = 10 * time.Second
)

// Server accepts syslog over TCP, TLS and UDP. Set the fields, call Open to
// bind (addresses may use port 0; Addrs reports the bound ones), then Serve;
// stop it with Shutdown (or Close).
// Empty addresses are not listened on; TLS is served only when both TLSAddr
// and TLSConfig are set.
//
// TCP and TLS connections are read through a [Reader] (octet counting and
// newline framing, detected per frame), one Sink per connection, with
// Sink.Flush after the frames of every read. UDP datagrams are one message
// each (a trailing newline is stripped); two goroutines read them, each with
// its own Sink, taking turns on the socket; a reader flushes when no
// further datagram is waiting, before it waits for its turn, and after 256
// datagrams.
type Server struct {
	TCPAddr, UDPAddr, TLSAddr string
	TLSConfig                 *tls.Config
	// MaxFrame is the largest accepted message (default DefaultMaxFrame);
	// longer frames and datagrams are discarded and counted.
	MaxFrame int
	// MaxConns limits open TCP+TLS connections (0: no limit). Connections
	// over the limit are accepted, closed at once and counted.
	MaxConns int
	// IdleTimeout closes a connection that sent nothing for that long (0:
	// never).
	IdleTimeout time.Duration
	Handler     Handler
	Logger      zerolog.Logger
	Metrics     *Metrics

	mu      sync.Mutex
	opened  bool
	serving bool
	tcpLn   net.Listener
	tlsLn   net.Listener
	udpConn *net.UDPConn
	udpMu   sync.Mutex // held by the UDP reader that reads the socket
	conns   map[net.Conn]struct{}
	nconns  int
	wg      sync.WaitGroup

	closing  atomic.Bool
	flushCut atomic.Bool // the shutdown's context ended before the sinks were done
	stopOnce sync.Once
	stopped  chan struct{} // closed when the shutdown finished
	closeCh  chan struct{} // closed by Close to end Serve
	closeOne sync.Once

	// flushCtx is passed to Sink.Flush; it is cancelled when a shutdown
	// runs out of time. closeCtx is cancelled when a shutdown starts.
	flushCtx    context.Context
	cancelFlush context.CancelFunc
	closeCtx    context.Context
	cancelClose context.CancelFunc

	badInput [3]zerolog.Logger // per listener: one line per logEvery
}

// ListenAddrs are the addresses a Server is bound to; nil when not
// listening.
type ListenAddrs struct {
	TCP, UDP, TLS net.Addr
}

const (
	lnTCP = iota
	lnTLS
	lnUDP
)

var listenerNames = [...]string{lnTCP: "tcp", lnTLS: "tls", lnUDP: "udp"}

// shutdownGrace is how long Close (and Serve, when its context ends) lets
// sinks flush before their context is cancelled (a variable for tests).
// Shutdown takes the bound from its context instead.
var shutdownGrace = 10 * time.Second

var errClosing = errors.New("syslog: server closing")

// Open binds the configured listeners. On error nothing stays bound.
func (s *Server) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened {
		return errors.New("syslog: server already opened")
	}
	if s.Handler == nil {
		return errors.New("syslog: server has no Handler")
	}
	if s.MaxFrame <= 0 {
		s.MaxFrame = DefaultMaxFrame
	}
	for ln, name := range listenerNames {
		s.badInput[ln] = s.Logger.Sample(&zerolog.BurstSampler{Burst: 1, Period: logEvery}).
			With().Str("listener", name).Logger()
	}
	lc := net.ListenConfig{KeepAlive: 30 * time.Second}
	ctx := context.Background()
	fail := func(err error) error {
		for _, c := range []io.Closer{s.tcpLn, s.tlsLn, s.udpConn} {
			if c != nil && !isNilCloser(c) {
				c.Close()
			}
		}
		s.tcpLn, s.tlsLn, s.udpConn = nil, nil, nil
		return err
	}
	if s.TCPAddr != "" {
		ln, err := lc.Listen(ctx, "tcp", s.TCPAddr)
		if err != nil {
			return fail(fmt.Errorf("syslog tcp listen %s: %w", s.TCPAddr, err))
		}
		s.tcpLn = ln
	}
	if s.TLSAddr != "" && s.TLSConfig != nil {
		ln, err := lc.Listen(ctx, "tcp", s.TLSAddr)
		if err != nil {
			return fail(fmt.Errorf("syslog tls listen %s: %w", s.TLSAddr, err))
		}
		s.tlsLn = tls.NewListener(ln, s.TLSConfig)
	}
	if s.UDPAddr != "" {
		pc, err := lc.ListenPacket(ctx, "udp", s.UDPAddr)
		if err != nil {
			return fail(fmt.Errorf("syslog udp listen %s: %w", s.UDPAddr, err))
		}
		s.udpConn = pc.(*net.UDPConn)
		// Best effort: a larger socket buffer absorbs bursts (the kernel
		// caps it at net.core.rmem_max).
		_ = s.udpConn.SetReadBuffer(udpSocketBuffer)
	}
	s.opened = true
	s.conns = make(map[net.Conn]struct{})
	s.stopped = make(chan struct{})
	s.closeCh = make(chan struct{})
	s.flushCtx, s.cancelFlush = context.WithCancel(context.Background())
	s.closeCtx, s.cancelClose = context.WithCancel(context.Background())
	return nil
}

func isNilCloser(c io.Closer) bool {
	switch v := c.(type) {
	case net.Listener:
		return v == nil
	case *net.UDPConn:
		return v == nil
	}
	return false
}

// Addrs returns the bound addresses (after Open).
func (s *Server) Addrs() ListenAddrs {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a ListenAddrs
	if s.tcpLn != nil {
		a.TCP = s.tcpLn.Addr()
	}
	if s.tlsLn != nil {
		a.TLS = s.tlsLn.Addr()
	}
	if s.udpConn != nil {
		a.UDP = s.udpConn.LocalAddr()
	}
	return a
}

// Serve accepts and reads until ctx is done or Close is called, then shuts
// down gracefully (see Close) and returns nil. It calls Open if that was not
// done yet.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	opened := s.opened
	s.mu.Unlock()
	if !opened {
		if err := s.Open(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("syslog: Serve called twice")
	}
	if s.closing.Load() {
		s.mu.Unlock()
		return nil // closed before serving
	}
	s.serving = true
	if s.tcpLn != nil {
		s.wg.Add(1)
		go s.accept(s.tcpLn, lnTCP)
	}
	if s.tlsLn != nil {
		s.wg.Add(1)
		go s.accept(s.tlsLn, lnTLS)
	}
	if s.udpConn != nil {
		for i := 0; i < udpReaders; i++ {
			s.wg.Add(1)
			go s.readUDP()
		}
	}
	s.mu.Unlock()

	select {
	case <-ctx.Done():
		s.Close()
	case <-s.closeCh:
		<-s.stopped // Shutdown or Close runs it
	}
	return nil
}

// Close is Shutdown with 10 s for the Sinks to flush.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	s.Shutdown(ctx)
	return nil
}

// Shutdown shuts the server down gracefully: it stops accepting, breaks
// blocked reads, hands over the complete frames already read, flushes and
// closes every Sink, and waits for all goroutines. When ctx ends before
// the Sinks are done, their Flush context is cancelled (what they hold is
// lost) and Shutdown returns ctx.Err() once they have returned. Only the
// first Shutdown or Close shuts down; later ones wait for it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	opened := s.opened
	s.mu.Unlock()
	if !opened {
		return nil
	}
	s.shutdown(ctx)
	if !s.flushCut.Load() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errFlushCut // by the context of the Shutdown or Close that ran first
}

var errFlushCut = errors.New("syslog: shutdown deadline passed before every frame read was flushed")

func (s *Server) shutdown(ctx context.Context) {
	s.stopOnce.Do(func() {
		s.closeOne.Do(func() { close(s.closeCh) })
		s.mu.Lock()
		s.closing.Store(true)
		s.cancelClose()
		if s.tcpLn != nil {
			s.tcpLn.Close()
		}
		if s.tlsLn != nil {
			s.tlsLn.Close()
		}
		if s.udpConn != nil {
			s.udpConn.SetReadDeadline(time.Now())
		}
		for c := range s.conns {
			c.SetReadDeadline(time.Now())
		}
		s.mu.Unlock()

		stop := context.AfterFunc(ctx, s.cancelFlush)
		s.wg.Wait()
		if !stop() {
			s.flushCut.Store(true)
		}
		s.cancelFlush()
		if s.udpConn != nil {
			s.udpConn.Close()
		}
		close(s.stopped)
	})
	<-s.stopped
}

// logBadInput logs at most one line per listener every logEvery.
func (s *Server) logBadInput(ln int, what string, remote net.Addr) {
	ev := s.badInput[ln].Warn()
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("problem", what)
	if remote != nil {
		ev = ev.Str("remote_addr", remote.String())
	}
	ev.Msg("bad syslog input (further reports suppressed for 10s)")
}

// track registers an accepted connection; false when the server is closing
// or full.
func (s *Server) track(c net.Conn) (ok, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false, false
	}
	if s.MaxConns > 0 && s.nconns >= s.MaxConns {
		return false, true
	}
	s.nconns++
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true, false
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.nconns--
	s.mu.Unlock()
}

func (s *Server) accept(ln net.Listener, which int) {
	defer s.wg.Done()
	m := s.Metrics.listener(listenerNames[which])
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || !errors.Is(err, net.ErrClosed) {
				// Temporary (e.g. too many open files): back off.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				s.logBadInput(which, "accept: "+err.Error(), nil)
				select {
				case <-time.After(delay):
				case <-s.closeCtx.Done():
					return
				}
				continue
			}
			return
		}
		delay = 0
		ok, full := s.track(c)
		if !ok {
			if full {
				m.connRejected()
				s.logBadInput(which, "too many connections", c.RemoteAddr())
			}
			c.Close()
			continue
		}
		go s.serveConn(c, which, m)
	}
}

// serveConn reads one TCP or TLS connection until it ends, times out or the
// server closes.
func (s *Server) serveConn(c net.Conn, which int, m listenerMetrics) {
	defer s.wg.Done()
	defer s.untrack(c)
	defer c.Close()
	m.connOpened()
	defer m.connClosed()

	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(true)
	}
	if tc, ok := c.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(s.closeCtx, handshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if !s.closing.Load() {
				s.logBadInput(which, "tls handshake: "+err.Error(), c.RemoteAddr())
			}
			return
		}
	}

	sink := s.Handler.NewSink(listenerNames[which])
	defer sink.Close()
	if ps, ok := sink.(PeerSink); ok {
		ps.SetRemote(c.RemoteAddr())
	}
	var n counts
	flush := func() error {
		if n.frames == 0 {
			m.add(&n)
			return nil
		}
		m.add(&n)
		return sink.Flush(s.flushCtx)
	}
	r := NewReader(c, s.MaxFrame)
	r.beforeRead = func() error {
		if err := flush(); err != nil {
			return err
		}
		if s.closing.Load() {
			return errClosing
		}
		if s.IdleTimeout > 0 {
			c.SetReadDeadline(time.Now().Add(s.IdleTimeout))
			// Close sets the closing flag before it sets the deadline to
			// now: either we see the flag, or its deadline comes after ours.
			if s.closing.Load() {
				return errClosing
			}
		}
		return nil
	}
	for {
		msg, err := r.Next()
		if err == nil {
			sink.Frame(msg)
			n.frames++
			continue
		}
		var fe *FrameError
		if errors.As(err, &fe) {
			if fe.Kind == Oversize {
				n.oversize++
				s.logBadInput(which, "oversize frame", c.RemoteAddr())
			} else {
				n.malformed++
				s.logBadInput(which, "malformed frame", c.RemoteAddr())
			}
			continue
		}
		break
	}
	if err := flush(); err != nil && !s.closing.Load() {
		s.Logger.Debug().Err(err).Str("listener", listenerNames[which]).Msg("flush")
	}
}

// readUDP is one of the UDP reader goroutines.
func (s *Server) readUDP() {
	defer s.wg.Done()
	m := s.Metrics.listener(listenerNames[lnUDP])
	sink := s.Handler.NewSink(listenerNames[lnUDP])
	defer sink.Close()
	buf := make([]byte, udpBufSize)
	ur := newUDPReader(s.udpConn)
	var n counts
	pending := 0
	flush := func() {
		m.add(&n)
		if pending > 0 {
			pending = 0
			if err := sink.Flush(s.flushCtx); err != nil && !s.closing.Load() {
				s.Logger.Debug().Err(err).Str("listener", "udp").Msg("flush")
			}
		}
	}
	defer flush()
	for {
		// The readers take turns on the socket. One that has frames to
		// flush must not wait for its turn behind a blocking read:
		// flush first.
		if !s.udpMu.TryLock() {
			flush()
			s.udpMu.Lock()
		}
		size, err := ur.read(buf, pending == 0 && n == counts{})
		s.udpMu.Unlock()
		if err == errWouldBlock {
			flush()
			continue
		}
		if err != nil {
			if !s.closing.Load() && !errors.Is(err, net.ErrClosed) {
				s.Logger.Error().Err(err).Msg("syslog udp read")
			}
			return
		}
		msg := buf[:size]
		if len(msg) > 0 && msg[len(msg)-1] == '\n' {
			msg = msg[:len(msg)-1]
			if len(msg) > 0 && msg[len(msg)-1] == '\r' {
				msg = msg[:len(msg)-1]
			}
		}
		switch {
		case len(msg) == 0:
			continue
		case len(msg) > s.MaxFrame:
			n.oversize++
			s.logBadInput(lnUDP, "oversize datagram", nil)
			continue
		}
		sink.Frame(msg)
		n.frames++
		pending++
		if pending >= udpMaxBatch {
			flush()
		}
		if s.closing.Load() {
			return
		}
	}
}
