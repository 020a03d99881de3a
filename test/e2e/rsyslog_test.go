package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/plexustest"
)

// rsyslogModule reports whether rsyslog has a loadable module (e.g. the
// gtls network stream driver).
func rsyslogModule(name string) bool {
	for _, pat := range []string{"/usr/lib/*/rsyslog/" + name + ".so", "/usr/lib/rsyslog/" + name + ".so", "/usr/lib64/rsyslog/" + name + ".so"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return true
		}
	}
	return false
}

// rsyslogd is a running rsyslogd started by a test.
type rsyslogd struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// startRsyslog checks conf with `rsyslogd -N1`, then runs
// `rsyslogd -n -f conf -i pidfile` in dir until the test ends.
func startRsyslog(t testing.TB, dir, conf string) *rsyslogd {
	t.Helper()
	bin := plexustest.NeedProgram(t, "rsyslogd", "rsyslog")
	confFile := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-N1", "-f", confFile).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd -N1 rejects the configuration: %v\n%s\nconfiguration:\n%s", err, out, conf)
	}
	r := &rsyslogd{out: &lockedBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin, "-n", "-f", confFile, "-i", filepath.Join(dir, "rsyslogd.pid"))
	r.cmd.Dir = dir
	r.cmd.Stdout = r.out
	r.cmd.Stderr = r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s\nconfiguration:\n%s", tailOf(r.out.String(), 4000), conf)
		}
	})
	return r
}

// stop sends SIGTERM (rsyslog flushes its queues) and waits, killing it
// after 10 s.
func (r *rsyslogd) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// docSnippet returns the code between <!-- name:begin --> and
// <!-- name:end --> in docs/forwarding.md, without the ``` fences.
func docSnippet(t testing.TB, name string) string {
	t.Helper()
	root, err := plexustest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "forwarding.md"))
	if err != nil {
		t.Fatalf("read docs/forwarding.md: %v", err)
	}
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("docs/forwarding.md has no %s … %s section", begin, end)
	}
	var lines []string
	for _, l := range strings.Split(string(doc[i+len(begin):j]), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			continue
		}
		lines = append(lines, l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n")) + "\n"
}

// substitute replaces the documented placeholders, in order: pairs of
// placeholder, value.
func substitute(t testing.TB, snippet string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		k, v := pairs[i], pairs[i+1]
		if !strings.Contains(snippet, k) {
			t.Fatalf("snippet lacks the placeholder %s:\n%s", k, snippet)
		}
		snippet = strings.ReplaceAll(snippet, k, v)
	}
	return snippet
}

var omfwdActionRE = regexp.MustCompile(`(?s)action\(type="omfwd"[^)]*\)`)

// TestRsyslogForwarding runs a real rsyslogd with the configuration snippet
// from docs/forwarding.md, injects messages through its local socket with
// logger, and checks that they reach the channel with the sender's app name,
// procid and message: octet-counted TCP as documented, newline framing
// (the documented variant: without TCP_Framing) and TLS.
func TestRsyslogForwarding(t *testing.T) {
	plexustest.NeedProgram(t, "rsyslogd", "rsyslog")
	logger := plexustest.NeedProgram(t, "logger", "bsdutils")
	dir := t.TempDir()
	certFile, keyFile, _ := selfSignedCert(t, dir, "localhost", "127.0.0.1")
	s := start(t, "-tls-cert", certFile, "-tls-key", keyFile)
	snippet := docSnippet(t, "rsyslog-snippet")

	run := func(t *testing.T, forward func(tok string) string) {
		ch := s.createChannel(t, "rsyslog-"+t.Name(), "app")
		rdir := t.TempDir()
		sock := filepath.Join(rdir, "log.sock")
		conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%q CreatePath="on")
`, rdir, sock) + forward(ch.Tokens["app"])
		startRsyslog(t, rdir, conf)
		waitFor(t, 10*time.Second, "rsyslogd's socket", func() (bool, string) {
			_, err := os.Stat(sock)
			return err == nil, fmt.Sprint(err)
		})

		inject := [][]string{
			{"-t", "myapp", "--id=1234", "hello from rsyslog 1"},
			{"-t", "worker", "--id=77", `quotes "x", a ] bracket and t.not-a-token`},
			{"-t", "myapp", "--id=1234", "hello from rsyslog 3"},
		}
		for _, args := range inject {
			args = append([]string{"--socket", sock, "--socket-errors=on", "-p", "local0.info"}, args...)
			if out, err := exec.Command(logger, args...).CombinedOutput(); err != nil {
				t.Fatalf("logger %q: %v: %s", args, err, out)
			}
		}
		ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`
		want := []string{
			ts + ` myapp\[1234\]: hello from rsyslog 1`,
			ts + ` worker\[77\]: quotes "x", a \] bracket and t\.not-a-token`,
			ts + ` myapp\[1234\]: hello from rsyslog 3`,
		}
		// rsyslog suspends an action whose connection failed for its
		// resume interval (30 s by default, what users of the snippet get):
		// on a loaded machine a TLS handshake may miss its first try, so
		// the wait covers one retry.
		got := s.waitHistory(t, ch.ID, len(want), 75*time.Second)
		checkLines(t, got, want)
		t.Logf("session lines: %q", got)
	}

	port := func(addr string) string {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("octet-counted", func(t *testing.T) {
		run(t, func(tok string) string {
			return substitute(t, snippet,
				"PLEXUS_HOST", "127.0.0.1", "PLEXUS_PORT", port(s.Addrs.SyslogTCP), "t.YOUR-TOKEN", tok)
		})
	})
	t.Run("newline", func(t *testing.T) {
		run(t, func(tok string) string {
			conf := substitute(t, snippet,
				"PLEXUS_HOST", "127.0.0.1", "PLEXUS_PORT", port(s.Addrs.SyslogTCP), "t.YOUR-TOKEN", tok)
			if !strings.Contains(conf, `TCP_Framing="octet-counted"`) {
				t.Fatalf("snippet has no TCP_Framing=\"octet-counted\" to remove")
			}
			return strings.Replace(conf, `TCP_Framing="octet-counted"`, "", 1)
		})
	})
	t.Run("tls", func(t *testing.T) {
		if !rsyslogModule("lmnsd_gtls") {
			plexustest.Missing(t, "rsyslog's gtls network stream driver (lmnsd_gtls)", "rsyslog-gnutls")
		}
		run(t, func(tok string) string {
			conf := substitute(t, snippet,
				"PLEXUS_HOST", "127.0.0.1", "PLEXUS_PORT", port(s.Addrs.SyslogTCP), "t.YOUR-TOKEN", tok)
			if !omfwdActionRE.MatchString(conf) {
				t.Fatalf("no omfwd action in the snippet to replace")
			}
			tlsAction := substitute(t, docSnippet(t, "rsyslog-tls-snippet"),
				// The certificate names localhost; connect to 127.0.0.1 and
				// check the name against the certificate.
				`target="PLEXUS_HOST"`, `target="127.0.0.1"`,
				"PLEXUS_HOST", "localhost",
				"PLEXUS_TLS_PORT", port(s.Addrs.SyslogTLS),
				"PLEXUS_CA_FILE", certFile)
			return omfwdActionRE.ReplaceAllLiteralString(conf, tlsAction)
		})
	})
}

// TestLoggerDirect sends with util-linux logger straight to Plexus, as
// docs/forwarding.md shows for checking by hand: octet-counted RFC 5424 with
// the token in structured data, newline-framed with the token as APP-NAME,
// and UDP.
func TestLoggerDirect(t *testing.T) {
	logger := plexustest.NeedProgram(t, "logger", "bsdutils")
	s := start(t)
	ch := s.createChannel(t, "logger", "app")
	tok := ch.Tokens["app"]
	host, port, _ := net.SplitHostPort(s.Addrs.SyslogTCP)
	uhost, uport, _ := net.SplitHostPort(s.Addrs.SyslogUDP)
	runs := [][]string{
		{"-n", host, "-P", port, "-T", "--octet-count", "--rfc5424", "--sd-id", "plexus@32473", "--sd-param", `token="` + tok + `"`, "-t", "myapp", "--id=5", "logger octet sd"},
		{"-n", host, "-P", port, "-T", "--rfc5424", "-t", tok, "--id=6", "logger newline appname"},
		{"-n", uhost, "-P", uport, "-d", "--rfc5424", "-t", tok, "--id=7", "logger udp"},
	}
	for i, args := range runs {
		if out, err := exec.Command(logger, args...).CombinedOutput(); err != nil {
			t.Fatalf("logger %q: %v: %s", args, err, out)
		}
		// One at a time, so the order in the channel is known.
		s.waitHistory(t, ch.ID, i+1, 10*time.Second)
	}
	ts := `\d{4}-\d\d-\d\dT\S+`
	checkLines(t, s.historyLines(t, ch.ID, 10), []string{
		ts + ` myapp\[5\]: logger octet sd`,
		ts + ` app\[6\]: logger newline appname`,
		ts + ` app\[7\]: logger udp`,
	})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRsyslogDrainReceiver gives a channel a syslog drain pointing at a real
// rsyslogd (imtcp → omfile) and checks that the file receives every message
// ingested, in order, with the drain token as HOSTNAME.
func TestRsyslogDrainReceiver(t *testing.T) {
	plexustest.NeedProgram(t, "rsyslogd", "rsyslog")
	dir := t.TempDir()
	out := filepath.Join(dir, "drain.log")
	p := freePort(t)
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
template(name="DrainLine" type="string" string="%%HOSTNAME%% %%APP-NAME%% %%PROCID%% %%msg%%\n")
ruleset(name="drain") {
    action(type="omfile" file=%q template="DrainLine")
}
input(type="imtcp" port="%d" address="127.0.0.1" ruleset="drain")
`, dir, out, p)
	startRsyslog(t, dir, conf)
	addr := "127.0.0.1:" + strconv.Itoa(p)
	waitFor(t, 10*time.Second, "rsyslogd to listen on "+addr, func() (bool, string) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil, fmt.Sprint(err)
	})

	s := start(t)
	ch := s.createChannel(t, "drained", "app")
	r := s.API(t, "POST", "/v2/channels/"+ch.ID+"/drains", map[string]any{"url": "syslog://" + addr})
	mustStatus(t, "POST /v2/channels/{id}/drains", r, 201)
	var d struct {
		ID    any
		Token string
		URL   string
	}
	r.JSON(t, &d)
	if !strings.HasPrefix(d.Token, "d.") || d.URL != "syslog://"+addr {
		t.Fatalf("drain answer %s", r)
	}

	const n = 1000
	var want []string
	for i := 1; i <= n; i += 100 {
		var batch []string
		for j := i; j < i+100; j++ {
			batch = append(batch, fmt.Sprintf("<134>1 2024-06-01T00:00:00.%06dZ host %s web.%d - - drain message %d", j, ch.Tokens["app"], j%3, j))
			want = append(want, fmt.Sprintf("%s app web.%d drain message %d", d.Token, j%3, j))
		}
		s.mustPostLogs(t, ch.Tokens["app"], batch...)
	}
	var got []string
	waitFor(t, 30*time.Second, fmt.Sprintf("%d lines in %s", n, out), func() (bool, string) {
		b, _ := os.ReadFile(out)
		got = splitLines(string(b))
		return len(got) >= n, fmt.Sprintf("%d lines, last %q", len(got), tailLines(got, 2))
	})
	if len(got) != n {
		t.Fatalf("receiver got %d lines, want %d", len(got), n)
	}
	t.Logf("receiver file: %q … %q", got[0], got[n-1])
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d:\n got %q\nwant %q", i+1, got[i], want[i])
		}
	}
}
