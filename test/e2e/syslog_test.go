package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unknownToken is well-formed but belongs to no channel.
const unknownToken = "t.00000000-0000-4000-8000-000000000000"

// write sends b on conn, failing the test on error.
func write(t testing.TB, conn net.Conn, b string) {
	t.Helper()
	if err := conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(b)); err != nil {
		t.Fatalf("write to %s: %v", conn.RemoteAddr(), err)
	}
}

func dialTCP(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial tcp %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func sendUDP(t testing.TB, addr string, datagrams ...string) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatalf("dial udp %s: %v", addr, err)
	}
	defer conn.Close()
	for _, d := range datagrams {
		write(t, conn, d)
	}
}

// streamScript is a byte stream mixing both framings, broken input and
// good messages, and the session lines the good messages must become
// (regular expressions, anchored), in order.
func streamScript(tok string) (chunks []string, want []string) {
	pad := func(prefix string, total int, end string) string {
		return prefix + strings.Repeat("x", total-len(prefix)-len(end)) + end
	}
	oversized := pad("<134>1 2024-01-02T03:04:05.000010Z host "+tok+" web.1 - - ", 20000, "\n")
	chunks = []string{
		// RFC 5424, token in APP-NAME, octet counted.
		frame("<134>1 2024-01-02T03:04:05.000001Z host " + tok + " web.1 - - octet counted"),
		// The same, newline terminated.
		"<134>1 2024-01-02T03:04:05.000002Z host " + tok + " web.2 - - newline framed\n",
		// Garbage line, no token at all, unknown token: dropped, connection kept.
		"this is not syslog\n",
		frame("<134>1 2024-01-02T03:04:05.000003Z host notatoken web.3 - - no token"),
		"<134>1 2024-01-02T03:04:05.000004Z host " + unknownToken + " web.4 - - unknown token\n",
		// Token in structured data: the APP-NAME is kept.
		frame(`<134>1 2024-01-02T03:04:05.000005Z host myapp worker.1 - [plexus@32473 token="` + tok + `"] sd token`),
		// Oversized, octet counted (its length covers up to and including the
		// newline, so any framing choice skips the same bytes).
		"20000 " + oversized,
		// Oversized newline-terminated line.
		pad("<134>1 2024-01-02T03:04:05.000011Z host "+tok+" web.1 - - ", 15000, "\n"),
		// RFC 3164 with the token as TAG, newline terminated.
		"<134>Jan  2 03:04:05 myhost " + tok + "[42]: bsd tag\n",
		// A frame split over two writes.
		frame("<134>1 2024-01-02T03:04:05.000006Z host " + tok + " web.6 - - split frame")[:20],
		frame("<134>1 2024-01-02T03:04:05.000006Z host " + tok + " web.6 - - split frame")[20:],
		// Message ending in a newline inside an octet-counted frame.
		frame("<134>1 2024-01-02T03:04:05.000007Z host " + tok + " web.7 - - last\n"),
	}
	want = []string{
		`2024-01-02T03:04:05\.000001Z app\[web\.1\]: octet counted`,
		`2024-01-02T03:04:05\.000002Z app\[web\.2\]: newline framed`,
		`2024-01-02T03:04:05\.000005Z myapp\[worker\.1\]: sd token`,
		`\S+ app\[42\]: bsd tag`,
		`2024-01-02T03:04:05\.000006Z app\[web\.6\]: split frame`,
		`2024-01-02T03:04:05\.000007Z app\[web\.7\]: last`,
	}
	return chunks, want
}

// checkLines compares session lines with anchored regular expressions.
func checkLines(t testing.TB, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = regexp.MustCompile("^" + want[i] + "$").MatchString(got[i])
	}
	if !ok {
		t.Errorf("session lines:\n got %q\nwant (regexps) %q", got, want)
	}
}

// checkLinesAnyOrder is checkLines ignoring the order.
func checkLinesAnyOrder(t testing.TB, got, want []string) {
	t.Helper()
	used := make([]bool, len(got))
	ok := len(got) == len(want)
	for _, w := range want {
		re := regexp.MustCompile("^" + w + "$")
		found := false
		for i, g := range got {
			if !used[i] && re.MatchString(g) {
				used[i], found = true, true
				break
			}
		}
		ok = ok && found
	}
	if !ok {
		sorted := append([]string(nil), got...)
		sort.Strings(sorted)
		t.Errorf("session lines (any order):\n got %q\nwant (regexps) %q", sorted, want)
	}
}

func sendScript(t testing.TB, conn net.Conn, chunks []string) {
	t.Helper()
	for _, c := range chunks {
		write(t, conn, c)
		time.Sleep(2 * time.Millisecond) // separate segments, so frames span reads
	}
}

func TestSyslogTCP(t *testing.T) {
	s := start(t)
	ch := s.createChannel(t, "tcp", "app")
	chunks, want := streamScript(ch.Tokens["app"])
	conn := dialTCP(t, s.Addrs.SyslogTCP)
	sendScript(t, conn, chunks)
	got := s.waitHistory(t, ch.ID, len(want), 10*time.Second)
	checkLines(t, got, want)

	// The server neither answered nor closed the connection: it still works.
	write(t, conn, frame("<134>1 2024-01-02T03:04:05.000008Z host "+ch.Tokens["app"]+" web.8 - - still open"))
	got = s.waitHistory(t, ch.ID, len(want)+1, 10*time.Second)
	checkLines(t, got, append(want, `2024-01-02T03:04:05\.000008Z app\[web\.8\]: still open`))

	// What was dropped is counted.
	for _, c := range []struct {
		what string
		min  float64
	}{{"unknown_token", 1}, {"malformed", 2}, {"oversize", 2}} {
		if v := s.metric(t, c.what); v < c.min {
			t.Errorf("metrics: samples mentioning %q sum to %v, want at least %v", c.what, v, c.min)
		}
	}
}

// metric sums the values of the /metrics samples whose line contains all
// of the given substrings.
func (s *Server) metric(t testing.TB, substrings ...string) float64 {
	t.Helper()
	r := do(t, "GET", "http://"+s.Addrs.API+"/metrics", "", nil)
	mustStatus(t, "GET /metrics", r, 200)
	var sum float64
lines:
	for _, l := range strings.Split(string(r.Body), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		for _, sub := range substrings {
			if !strings.Contains(l, sub) {
				continue lines
			}
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func TestSyslogUDP(t *testing.T) {
	s := start(t)
	ch := s.createChannel(t, "udp", "app")
	tok := ch.Tokens["app"]
	sendUDP(t, s.Addrs.SyslogUDP,
		"<134>1 2024-01-02T03:04:05.000001Z host "+tok+" web.1 - - udp 5424",
		"this is not syslog",
		"<134>1 2024-01-02T03:04:05.000002Z host "+unknownToken+" web.2 - - unknown token",
		`<134>1 2024-01-02T03:04:05.000003Z host myapp web.3 - [plexus@32473 token="`+tok+`"] udp sd`,
		"<14>Jan  2 03:04:05 myhost "+tok+"[7]: udp bsd",
		// A datagram is one message even if it looks like an octet-counted frame.
		"<134>1 2024-01-02T03:04:05.000004Z host "+tok+" web.4 - - udp with newline\n",
	)
	got := s.waitHistory(t, ch.ID, 4, 10*time.Second)
	// Datagrams may be read by several goroutines: order is not promised.
	checkLinesAnyOrder(t, got, []string{
		`2024-01-02T03:04:05\.000001Z app\[web\.1\]: udp 5424`,
		`2024-01-02T03:04:05\.000003Z myapp\[web\.3\]: udp sd`,
		`2024-01-02T03:04:05\.000004Z app\[web\.4\]: udp with newline`,
		`\S+ app\[7\]: udp bsd`,
	})
}

func TestSyslogTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir, "localhost", "127.0.0.1")
	s := start(t, "-tls-cert", certFile, "-tls-key", keyFile)
	if s.Addrs.SyslogTLS == "" {
		t.Fatalf("no syslog_tls address in the addr file: %+v", s.Addrs)
	}
	ch := s.createChannel(t, "tls", "app")
	chunks, want := streamScript(ch.Tokens["app"])
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addrs.SyslogTLS,
		&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", s.Addrs.SyslogTLS, err)
	}
	t.Cleanup(func() { conn.Close() })
	sendScript(t, conn, chunks)
	got := s.waitHistory(t, ch.ID, len(want), 10*time.Second)
	checkLines(t, got, want)

	// A plain-TCP client on the TLS port is refused without harming others.
	plain := dialTCP(t, s.Addrs.SyslogTLS)
	write(t, plain, frame("<134>1 2024-01-02T03:04:05.000009Z host "+ch.Tokens["app"]+" web.9 - - plain on tls"))
	plain.Close()
	write(t, conn, frame("<134>1 2024-01-02T03:04:05.000008Z host "+ch.Tokens["app"]+" web.8 - - after"))
	got = s.waitHistory(t, ch.ID, len(want)+1, 10*time.Second)
	checkLines(t, got, append(want, `2024-01-02T03:04:05\.000008Z app\[web\.8\]: after`))
}

// selfSignedCert writes a self-signed ECDSA certificate for hosts (DNS
// names or IPs) and its key as PEM files in dir, and returns their paths and
// a pool trusting the certificate.
func selfSignedCert(t testing.TB, dir string, hosts ...string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"plexus e2e"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certFile, keyFile, pool
}
