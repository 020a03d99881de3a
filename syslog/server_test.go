package syslog

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		panic(err)
	}
	if pb.Counter != nil {
		return pb.Counter.GetValue()
	}
	return pb.Gauge.GetValue()
}

// recorder is a Handler whose sinks record everything.
type recorder struct {
	mu      sync.Mutex
	frames  map[string][]string // by proto, in order per sink
	pending map[*recSink][]string
	sinks   int
	closed  int
	flushes int
	// flush, if set, runs in Flush (outside the lock).
	flush func(ctx context.Context) error
}

func newRecorder() *recorder {
	return &recorder{frames: map[string][]string{}, pending: map[*recSink][]string{}}
}

type recSink struct {
	rec    *recorder
	proto  string
	closed bool
}

func (r *recorder) NewSink(proto string) Sink {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sinks++
	return &recSink{rec: r, proto: proto}
}

func (s *recSink) Frame(msg []byte) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if s.closed {
		panic("Frame after Close")
	}
	s.rec.pending[s] = append(s.rec.pending[s], string(msg))
}

// Flush moves the pending frames to frames: only flushed frames count.
func (s *recSink) Flush(ctx context.Context) error {
	if f := s.rec.flush; f != nil {
		if err := f(ctx); err != nil {
			return err
		}
	}
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if s.closed {
		panic("Flush after Close")
	}
	s.rec.flushes++
	s.rec.frames[s.proto] = append(s.rec.frames[s.proto], s.rec.pending[s]...)
	delete(s.rec.pending, s)
	return nil
}

func (s *recSink) Close() {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if s.closed {
		panic("Close twice")
	}
	s.closed = true
	s.rec.closed++
}

func (r *recorder) get(proto string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.frames[proto]...)
}

func (r *recorder) counts() (sinks, closed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sinks, r.closed
}

func (r *recorder) pendingFrames() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.pending {
		n += len(p)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startServer opens and serves s; Close is registered as cleanup and the
// goroutine count is checked afterwards.
func startServer(t *testing.T, s *Server) *Server {
	t.Helper()
	before := runtime.NumGoroutine()
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	})
	return s
}

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

func TestServerTCP(t *testing.T) {
	rec := newRecorder()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s := startServer(t, &Server{TCPAddr: "127.0.0.1:0", MaxFrame: 100, Handler: rec, Metrics: m})
	a := s.Addrs()
	if a.TCP == nil || a.UDP != nil || a.TLS != nil {
		t.Fatalf("Addrs() = %+v", a)
	}
	c := dial(t, a.TCP)
	write(t, c, "5 hel")
	write(t, c, "lo<13>tag: line\n101 "+strings.Repeat("x", 101)+"3 abc\r\n")
	write(t, c, strings.Repeat("y", 200)+"\nlast")
	c.Close()
	want := []string{"hello", "<13>tag: line", "abc", "last"}
	waitFor(t, "frames", func() bool { return len(rec.get("tcp")) >= len(want) })
	if got := rec.get("tcp"); !equal(got, want) {
		t.Errorf("frames = %q, want %q", got, want)
	}
	waitFor(t, "sink closed", func() bool { _, closed := rec.counts(); return closed == 1 })
	waitFor(t, "connection gauge", func() bool { return value(m.connections.WithLabelValues("tcp")) == 0 })
	for name, want := range map[string]float64{
		"connections_total": value(m.connectionsTotal.WithLabelValues("tcp")),
		"frames":            value(m.frames.WithLabelValues("tcp")),
		"oversize":          value(m.oversize.WithLabelValues("tcp")),
	} {
		exp := map[string]float64{"connections_total": 1, "frames": 4, "oversize": 2}[name]
		if want != exp {
			t.Errorf("%s = %v, want %v", name, want, exp)
		}
	}
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 6 {
		t.Errorf("Gather = %d families, %v; want 6", len(mfs), err)
	}
}

func TestServerTCPMalformedAtEOF(t *testing.T) {
	rec := newRecorder()
	m := NewMetrics(nil)
	s := startServer(t, &Server{TCPAddr: "127.0.0.1:0", Handler: rec, Metrics: m})
	c := dial(t, s.Addrs().TCP)
	write(t, c, "5 hello10 trunc")
	c.Close()
	waitFor(t, "sink closed", func() bool { _, closed := rec.counts(); return closed == 1 })
	if got := rec.get("tcp"); !equal(got, []string{"hello"}) {
		t.Errorf("frames = %q", got)
	}
	if v := value(m.malformed.WithLabelValues("tcp")); v != 1 {
		t.Errorf("malformed = %v, want 1", v)
	}
}

// lockedBuffer is a log destination shared by the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestServerBadInputLogIsRateLimited(t *testing.T) {
	rec := newRecorder()
	var logs lockedBuffer
	s := startServer(t, &Server{TCPAddr: "127.0.0.1:0", MaxFrame: 100, Handler: rec, Logger: zerolog.New(&logs)})
	c := dial(t, s.Addrs().TCP)
	for i := 0; i < 5; i++ {
		write(t, c, "101 "+strings.Repeat("x", 101))
	}
	write(t, c, "2 ok")
	waitFor(t, "the frame after the oversize ones", func() bool { return len(rec.get("tcp")) == 1 })
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"listener":"tcp"`) || !strings.Contains(lines[0], `"problem":"oversize frame"`) {
		t.Errorf("log after 5 oversize frames = %q, want one line about them", lines)
	}
}

func TestServerUDP(t *testing.T) {
	rec := newRecorder()
	m := NewMetrics(nil)
	s := startServer(t, &Server{UDPAddr: "127.0.0.1:0", MaxFrame: 50, Handler: rec, Metrics: m})
	a := s.Addrs()
	if a.UDP == nil || a.TCP != nil {
		t.Fatalf("Addrs() = %+v", a)
	}
	waitFor(t, "udp sinks", func() bool { sinks, _ := rec.counts(); return sinks == udpReaders })
	c := dial(t, a.UDP)
	var want []string
	for i := 0; i < 20; i++ {
		msg := fmt.Sprintf("<13>1 - h app %d - - message %d", i, i)
		want = append(want, msg)
		switch i % 3 {
		case 0:
			write(t, c, msg)
		case 1:
			write(t, c, msg+"\n")
		case 2:
			write(t, c, msg+"\r\n")
		}
	}
	write(t, c, strings.Repeat("z", 51))
	write(t, c, "\n")
	waitFor(t, "datagrams", func() bool { return len(rec.get("udp")) >= len(want) })
	got := rec.get("udp")
	// Two readers: order across them is not defined.
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("missing %q in %q", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d frames, want %d", len(got), len(want))
	}
	waitFor(t, "oversize count", func() bool { return value(m.oversize.WithLabelValues("udp")) == 1 })
	waitFor(t, "frames count", func() bool { return value(m.frames.WithLabelValues("udp")) == 20 })
}

func TestServerUDPBurst(t *testing.T) {
	rec := newRecorder()
	s := startServer(t, &Server{UDPAddr: "127.0.0.1:0", Handler: rec})
	c := dial(t, s.Addrs().UDP)
	const n = 500
	for i := 0; i < n; i++ {
		write(t, c, fmt.Sprintf("m%d", i))
		if i%50 == 0 {
			// Let the readers keep up: loopback drops when the socket
			// buffer is full, which is UDP, not a bug.
			waitFor(t, "readers", func() bool { return len(rec.get("udp"))+rec.pendingFrames() >= i })
		}
	}
	waitFor(t, "datagrams", func() bool { return len(rec.get("udp")) == n })
}

func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "plexus test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestServerTLS(t *testing.T) {
	rec := newRecorder()
	cfg, pool := selfSigned(t)
	m := NewMetrics(nil)
	s := startServer(t, &Server{TCPAddr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0", TLSConfig: cfg, Handler: rec, Metrics: m})
	a := s.Addrs()
	if a.TLS == nil || a.TCP == nil || a.TLS.String() == a.TCP.String() {
		t.Fatalf("Addrs() = %+v", a)
	}
	c, err := tls.Dial("tcp", a.TLS.String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	write(t, c, "5 hello<13>tag: line\n")
	c.Close()
	waitFor(t, "frames", func() bool { return len(rec.get("tls")) == 2 })
	if got := rec.get("tls"); !equal(got, []string{"hello", "<13>tag: line"}) {
		t.Errorf("frames = %q", got)
	}
	// A client that does not trust the certificate: no sink, no frames.
	if c, err := tls.Dial("tcp", a.TLS.String(), &tls.Config{}); err == nil {
		c.Close()
		t.Error("handshake with untrusted certificate succeeded")
	}
	// Plain text on the TLS port fails the handshake.
	pc := dial(t, a.TLS)
	write(t, pc, "5 hello")
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, pc)
	waitFor(t, "tls connections closed", func() bool { return value(m.connections.WithLabelValues("tls")) == 0 })
	if sinks, _ := rec.counts(); sinks != 1 {
		t.Errorf("sinks = %d, want 1", sinks)
	}
}

func TestServerTLSNeedsConfig(t *testing.T) {
	s := &Server{TLSAddr: "127.0.0.1:0", Handler: newRecorder()}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a := s.Addrs(); a.TLS != nil {
		t.Errorf("TLS listening without TLSConfig: %v", a.TLS)
	}
}

func TestServerMaxConns(t *testing.T) {
	rec := newRecorder()
	m := NewMetrics(nil)
	s := startServer(t, &Server{TCPAddr: "127.0.0.1:0", MaxConns: 1, Handler: rec, Metrics: m})
	c1 := dial(t, s.Addrs().TCP)
	write(t, c1, "one\n")
	waitFor(t, "first frame", func() bool { return len(rec.get("tcp")) == 1 })
	c2 := dial(t, s.Addrs().TCP)
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Errorf("second connection: Read = %d, %v; want EOF", n, err)
	}
	if v := value(m.rejected.WithLabelValues("tcp")); v != 1 {
		t.Errorf("rejected = %v, want 1", v)
	}
	c1.Close()
	waitFor(t, "slot free", func() bool { return value(m.connections.WithLabelValues("tcp")) == 0 })
	c3 := dial(t, s.Addrs().TCP)
	write(t, c3, "three\n")
	waitFor(t, "third frame", func() bool { return len(rec.get("tcp")) == 2 })
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestServerIdleTimeout(t *testing.T) {
	rec := newRecorder()
	s := startServer(t, &Server{TCPAddr: "127.0.0.1:0", IdleTimeout: 50 * time.Millisecond, Handler: rec})
	c := dial(t, s.Addrs().TCP)
	write(t, c, "5 hello")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Errorf("Read = %v, want EOF from the idle timeout", err)
	}
	waitFor(t, "sink closed", func() bool { _, closed := rec.counts(); return closed == 1 })
	if got := rec.get("tcp"); !equal(got, []string{"hello"}) {
		t.Errorf("frames = %q", got)
	}
}

// TestServerCloseGraceful: frames read before Close are flushed, blocked
// reads end, and Close waits for every sink.
func TestServerCloseGraceful(t *testing.T) {
	rec := newRecorder()
	release := make(chan struct{})
	var once sync.Once
	rec.flush = func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s := &Server{TCPAddr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", IdleTimeout: time.Hour, Handler: rec}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	idle := dial(t, s.Addrs().TCP)
	_ = idle
	c := dial(t, s.Addrs().TCP)
	write(t, c, "5 hello5 world")
	// Both frames were handed over; Flush blocks (back-pressure).
	waitFor(t, "frames handed over", func() bool { return rec.pendingFrames() == 2 })
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a Flush was blocked")
	case <-time.After(50 * time.Millisecond):
	}
	once.Do(func() { close(release) })
	<-closed
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := rec.get("tcp"); !equal(got, []string{"hello", "world"}) {
		t.Errorf("frames = %q", got)
	}
	sinks, closedSinks := rec.counts()
	if sinks != closedSinks || sinks != 2+udpReaders {
		t.Errorf("sinks = %d, closed = %d", sinks, closedSinks)
	}
	if _, err := net.Dial("tcp", s.Addrs().TCP.String()); err == nil {
		t.Error("still accepting after Close")
	}
}

// TestServerCloseFlushTimeout: a Flush that never returns is cancelled after
// the grace period.
func TestServerCloseFlushTimeout(t *testing.T) {
	old := shutdownGrace
	shutdownGrace = 50 * time.Millisecond
	defer func() { shutdownGrace = old }()
	rec := newRecorder()
	rec.flush = func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}
	s := &Server{TCPAddr: "127.0.0.1:0", Handler: rec}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }() // Serve opens
	waitFor(t, "listening", func() bool { return s.Addrs().TCP != nil })
	c := dial(t, s.Addrs().TCP)
	write(t, c, "5 hello")
	waitFor(t, "frame handed over", func() bool { return rec.pendingFrames() == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sinks, closed := rec.counts(); sinks != 1 || closed != 1 {
		t.Errorf("sinks = %d, closed = %d", sinks, closed)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

// TestServerShutdownDeadline: Shutdown takes the flush bound from its
// context (not the 10 s of Close): a Flush that never returns is cancelled
// when the context ends, and Shutdown says so; Serve returns.
func TestServerShutdownDeadline(t *testing.T) {
	rec := newRecorder()
	rec.flush = func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}
	s := &Server{TCPAddr: "127.0.0.1:0", Handler: rec}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	c := dial(t, s.Addrs().TCP)
	write(t, c, "5 hello")
	waitFor(t, "frame handed over", func() bool { return rec.pendingFrames() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline's error", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if sinks, closed := rec.counts(); sinks != 1 || closed != 1 {
		t.Errorf("sinks = %d, closed = %d", sinks, closed)
	}
	// A Shutdown whose flushes all completed returns nil.
	s = &Server{TCPAddr: "127.0.0.1:0", Handler: newRecorder()}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown with nothing to flush = %v", err)
	}
}

func TestServerOpenErrors(t *testing.T) {
	if err := (&Server{TCPAddr: "127.0.0.1:0"}).Open(); err == nil {
		t.Error("Open without Handler succeeded")
	}
	s := &Server{TCPAddr: "127.0.0.1:0", UDPAddr: "256.0.0.1:0", Handler: newRecorder()}
	if err := s.Open(); err == nil {
		t.Error("Open with a bad UDP address succeeded")
	}
	if a := s.Addrs(); a.TCP != nil {
		t.Errorf("TCP still bound after failed Open: %v", a.TCP)
	}
	// Close before Serve, then Serve returns at once.
	s = &Server{TCPAddr: "127.0.0.1:0", Handler: newRecorder()}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Serve(context.Background()); err != nil {
		t.Errorf("Serve after Close = %v", err)
	}
}
