package drains

// Test receivers: real HTTP(S) and syslog TCP/TLS endpoints on 127.0.0.1.
// Their frame decoders are written here from the wire format (RFC 6587
// octet counting, Logplex's logplex-1 body and drain line formats), not
// shared with package syslog or the encoder under test.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// decodeOctets splits a logplex-1 body into its messages: "LEN SP MSG"
// repeated, LEN a decimal without leading zero counting MSG's bytes.
func decodeOctets(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 || b[0] == '0' {
			return out, fmt.Errorf("bad frame length at %q", trim(b))
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n <= 0 {
			return out, fmt.Errorf("bad frame length %q", b[:sp])
		}
		if len(b) < sp+1+n {
			return out, fmt.Errorf("truncated frame: want %d bytes, have %d", n, len(b)-sp-1)
		}
		out = append(out, string(b[sp+1:sp+1+n]))
		b = b[sp+1+n:]
	}
	return out, nil
}

// readOctetFrame reads one octet-counted frame from a stream.
func readOctetFrame(br *bufio.Reader) (string, error) {
	l, err := br.ReadString(' ')
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(l, " "))
	if err != nil || n <= 0 || l[0] == '0' {
		return "", fmt.Errorf("bad frame length %q", l)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(br, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

func trim(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// httpLine is a logplex-1 HTTP drain message:
// "<PRI>1 TIMESTAMP host APP PROCID - MSG" (no structured data).
type httpLine struct{ Pri, TS, Host, App, ProcID, Msg string }

func parseHTTPLine(s string) (httpLine, error) {
	f := strings.SplitN(s, " ", 7)
	if len(f) != 7 || !strings.HasPrefix(f[0], "<") || !strings.HasSuffix(f[0], ">1") || f[5] != "-" {
		return httpLine{}, fmt.Errorf("not a drain line: %q", s)
	}
	return httpLine{f[0][1 : len(f[0])-2], f[1], f[2], f[3], f[4], f[6]}, nil
}

// syslogLine is a syslog drain message:
// "<PRI>1 TIMESTAMP HOST APP PROCID - - MSG\n".
type syslogLine struct{ Pri, TS, Host, App, ProcID, Msg string }

func parseSyslogLine(s string) (syslogLine, error) {
	if !strings.HasSuffix(s, "\n") {
		return syslogLine{}, fmt.Errorf("no trailing newline: %q", s)
	}
	f := strings.SplitN(strings.TrimSuffix(s, "\n"), " ", 8)
	if len(f) != 8 || !strings.HasPrefix(f[0], "<") || !strings.HasSuffix(f[0], ">1") || f[5] != "-" || f[6] != "-" {
		return syslogLine{}, fmt.Errorf("not a syslog drain line: %q", s)
	}
	return syslogLine{f[0][1 : len(f[0])-2], f[1], f[2], f[3], f[4], f[7]}, nil
}

// l10Count returns N of "Error L10 (output buffer overflow): N messages
// dropped since T.".
func l10Count(msg string) (uint64, bool) {
	const p = "Error L10 (output buffer overflow): "
	if !strings.HasPrefix(msg, p) {
		return 0, false
	}
	rest := strings.TrimPrefix(msg, p)
	i := strings.IndexByte(rest, ' ')
	if i < 0 || !strings.HasPrefix(rest[i:], " messages dropped since ") {
		return 0, false
	}
	n, err := strconv.ParseUint(rest[:i], 10, 64)
	return n, err == nil
}

// stream is what a receiver got, in order: messages and L10 counts.
type stream struct {
	msgs []string // MSG of every data line
	l10  []uint64 // counts of L10 lines
	l14  int      // L14 lines
}

func (s *stream) add(msg string) {
	if n, ok := l10Count(msg); ok {
		s.l10 = append(s.l10, n)
		return
	}
	if strings.HasPrefix(msg, "Error L14 ") {
		s.l14++
		return
	}
	s.msgs = append(s.msgs, msg)
}

func (s *stream) lost() (n uint64) {
	for _, c := range s.l10 {
		n += c
	}
	return n
}

// httpRequest is one request an HTTP receiver got.
type httpRequest struct {
	URI    string
	Header http.Header
	Body   []byte
	Lines  []httpLine
	Status int // what the receiver answered
}

// httpReceiver is an HTTP(S) drain endpoint.
type httpReceiver struct {
	t   testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []httpRequest
	acked   stream                          // messages of 2xx requests
	respond func(n int, r *httpRequest) int // status for request n (0-based); nil: 204
	hold    chan struct{}                   // when set, handlers wait on it
	seen    map[string]bool                 // acked frame ids
	errs    []error
	arrived int // requests that reached the handler
}

func newHTTPReceiver(t testing.TB, tlsCert *tls.Certificate, l net.Listener) *httpReceiver {
	r := &httpReceiver{t: t, seen: make(map[string]bool)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected in TLS tests
	if l != nil {
		srv.Listener.Close()
		srv.Listener = l
	}
	if tlsCert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*tlsCert}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	r.srv = srv
	t.Cleanup(r.close)
	return r
}

func (r *httpReceiver) close() {
	r.release()
	r.srv.Close()
}

// url returns the receiver's URL with path p.
func (r *httpReceiver) url(p string) string { return r.srv.URL + p }

func (r *httpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	hr := httpRequest{URI: req.RequestURI, Header: req.Header.Clone(), Body: body}
	if err == nil && req.Method != http.MethodPost {
		err = fmt.Errorf("method %s", req.Method)
	}
	var frames []string
	if err == nil {
		frames, err = decodeOctets(body)
	}
	for _, f := range frames {
		l, perr := parseHTTPLine(f)
		if perr != nil && err == nil {
			err = perr
		}
		hr.Lines = append(hr.Lines, l)
	}
	if err == nil {
		if c := req.Header.Get("Logplex-Msg-Count"); c != strconv.Itoa(len(frames)) {
			err = fmt.Errorf("Logplex-Msg-Count %q for %d frames", c, len(frames))
		}
	}
	r.mu.Lock()
	hold, respond := r.hold, r.respond
	n := r.arrived
	r.arrived++
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
		}
	}
	status := http.StatusNoContent
	if respond != nil {
		status = respond(n, &hr)
	}
	hr.Status = status
	r.mu.Lock()
	if err != nil {
		r.errs = append(r.errs, err)
	}
	r.reqs = append(r.reqs, hr)
	if status/100 == 2 {
		id := req.Header.Get("Logplex-Frame-Id")
		if r.seen[id] {
			r.errs = append(r.errs, fmt.Errorf("frame %s acknowledged twice", id))
		}
		r.seen[id] = true
		for _, l := range hr.Lines {
			r.acked.add(l.Msg)
		}
	}
	r.mu.Unlock()
	w.WriteHeader(status)
}

// block makes handlers wait until release.
func (r *httpReceiver) block() {
	r.mu.Lock()
	r.hold = make(chan struct{})
	r.mu.Unlock()
}

func (r *httpReceiver) release() {
	r.mu.Lock()
	if r.hold != nil {
		close(r.hold)
		r.hold = nil
	}
	r.mu.Unlock()
}

func (r *httpReceiver) setRespond(f func(n int, req *httpRequest) int) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

func (r *httpReceiver) requests() []httpRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]httpRequest(nil), r.reqs...)
}

func (r *httpReceiver) stream() stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.acked
	s.msgs = append([]string(nil), s.msgs...)
	s.l10 = append([]uint64(nil), s.l10...)
	return s
}

func (r *httpReceiver) arrivals() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.arrived
}

func (r *httpReceiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.errs {
		r.t.Error(err)
	}
}

// syslogReceiver is a syslog TCP or TLS listener that decodes
// octet-counted frames.
type syslogReceiver struct {
	t testing.TB
	l net.Listener

	mu     sync.Mutex
	got    stream
	lines  []syslogLine
	raw    bytes.Buffer
	frames []string // every frame, parsed or not
	errs   []error
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
	stall  chan struct{} // when set, connections stop reading until closed
}

func newSyslogReceiver(t testing.TB, tlsCert *tls.Certificate, addr string) *syslogReceiver {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tlsCert != nil {
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{*tlsCert}})
	}
	r := &syslogReceiver{t: t, l: l, conns: make(map[net.Conn]bool)}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *syslogReceiver) addr() string { return r.l.Addr().String() }

func (r *syslogReceiver) accept() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			c.Close()
			return
		}
		r.conns[c] = true
		r.mu.Unlock()
		r.wg.Add(1)
		go r.read(c)
	}
}

func (r *syslogReceiver) read(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		r.mu.Lock()
		stall := r.stall
		r.mu.Unlock()
		if stall != nil {
			<-stall
		}
		f, err := readOctetFrame(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				r.mu.Lock()
				if !r.closed {
					r.errs = append(r.errs, err)
				}
				r.mu.Unlock()
			}
			return
		}
		l, err := parseSyslogLine(f)
		r.mu.Lock()
		r.frames = append(r.frames, f)
		if err != nil {
			r.errs = append(r.errs, err)
		} else {
			r.lines = append(r.lines, l)
			r.got.add(strings.TrimSuffix(l.Msg, "\n"))
			fmt.Fprintf(&r.raw, "%d %s", len(f), f)
		}
		r.mu.Unlock()
	}
}

func isReset(err error) bool {
	// Handshake failures (bad certificate tests) are not the receiver's
	// business either.
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "closed network connection") || strings.Contains(s, "tls:")
}

func (r *syslogReceiver) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	if r.stall != nil {
		close(r.stall)
		r.stall = nil
	}
	r.l.Close()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *syslogReceiver) stream() stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.got
	s.msgs = append([]string(nil), s.msgs...)
	s.l10 = append([]uint64(nil), s.l10...)
	return s
}

func (r *syslogReceiver) allFrames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.frames...)
}

func (r *syslogReceiver) syslogLines() []syslogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]syslogLine(nil), r.lines...)
}

func (r *syslogReceiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.errs {
		r.t.Error(err)
	}
}

// testPKI is a test CA and a server certificate for 127.0.0.1 and
// localhost signed by it.
type testPKI struct {
	ca   *x509.Certificate
	pool *x509.CertPool
	cert tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI { return newTestPKIFor(t, true) }

// newTestPKIFor makes the server certificate valid for 127.0.0.1 only when
// withIP is set (always for localhost).
func newTestPKIFor(t testing.TB, withIP bool) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Plexus test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
	}
	if withIP {
		leaf.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &testPKI{ca: caCert, pool: pool, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}
