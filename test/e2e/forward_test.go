package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The forwarder tests run `plexus forward` against a real server through
// the test's own TCP proxy, which can be down (the server unreachable) and
// can swallow responses (a 204 lost on its way back), and check that the
// channel holds every line exactly once, in order per file.

// proxy forwards TCP connections to target. With target "" it refuses
// (accepts and closes); drop > 0 makes it swallow that many responses:
// the request reached the server, the client sees the connection close.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	drop   atomic.Int64
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) setTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
	if target == "" {
		p.closeAll()
	}
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		if target == "" {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c, true)
		p.track(up, true)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(up, c)
			up.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer func() {
				c.Close()
				up.Close()
				p.track(c, false)
				p.track(up, false)
			}()
			buf := make([]byte, 32<<10)
			for {
				n, err := up.Read(buf)
				if n > 0 {
					if p.drop.Load() > 0 && p.drop.Add(-1) >= 0 {
						return // the answer is lost
					}
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// forwarder is one `plexus forward` process.
type forwarder struct {
	t    *testing.T
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer
}

func startForwarder(t *testing.T, token, addr, state string, paths ...string) *forwarder {
	t.Helper()
	args := []string{"forward", "-url", "http://token:" + token + "@" + addr + "/logs",
		"-state", state, "-progress", "0", "-batch-age", "20ms", "-batch-lines", "300",
		"-poll", "50ms", "-rotate-wait", "500ms", "-max-backoff", "200ms", "-save-every", "100ms"}
	f := &forwarder{t: t, args: append(args, paths...), out: &lockedBuffer{}}
	t.Cleanup(func() {
		f.kill()
		if t.Failed() {
			t.Logf("forwarder output:\n%s", tailOf(f.out.String(), 4000))
		}
	})
	f.start()
	return f
}

func (f *forwarder) start() {
	f.t.Helper()
	f.cmd = exec.Command(binPath, f.args...)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	if err := f.cmd.Start(); err != nil {
		f.t.Fatalf("start forwarder: %v", err)
	}
	f.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(f.cmd, f.done)
}

func (f *forwarder) kill() {
	if f.cmd == nil {
		return
	}
	_ = f.cmd.Process.Kill()
	<-f.done
	f.cmd = nil
}

func (f *forwarder) stop() {
	f.t.Helper()
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		f.t.Fatal("forwarder did not stop within 20 s of SIGTERM")
	}
	if code := f.cmd.ProcessState.ExitCode(); code != 0 {
		f.t.Fatalf("forwarder exited with %d after SIGTERM", code)
	}
	f.cmd = nil
}

// writer appends numbered lines "f=NAME n=N …" to a file. rename starts a
// new NAME: lines of one NAME are in one file, in order.
type writer struct {
	base  string
	name  string
	path  string
	f     *os.File
	n     int
	gen   int
	total int
}

func newWriter(t *testing.T, name, path string) *writer {
	t.Helper()
	w := &writer{base: name, name: name, path: path}
	w.reopen(t)
	return w
}

// next starts numbering lines under a new name (a new file, or the same
// file after truncation).
func (w *writer) next() {
	w.gen++
	w.name = fmt.Sprintf("%s.%d", w.base, w.gen)
	w.n = 0
}

func (w *writer) reopen(t *testing.T) {
	t.Helper()
	if w.f != nil {
		w.f.Close()
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w.f = f
}

func (w *writer) write(t *testing.T, n int) {
	t.Helper()
	var b strings.Builder
	for range n {
		fmt.Fprintf(&b, "f=%s n=%d %s\n", w.name, w.n, strings.Repeat("x", w.n%50))
		w.n++
		w.total++
	}
	if _, err := w.f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

var lineRE = regexp.MustCompile(`f=(\S+) n=(\d+)`)

// checkExactlyOnce reads the channel and reports whether every writer's
// lines are there exactly once, in order.
func checkExactlyOnce(t *testing.T, s *Server, ch string, ws ...*writer) (bool, string) {
	total := 0
	for _, w := range ws {
		total += w.total
	}
	lines := s.historyLines(t, ch, 50000)
	next := map[string]int{}
	for _, l := range lines {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			return false, fmt.Sprintf("unexpected line %q", l)
		}
		n, _ := strconv.Atoi(m[2])
		if n != next[m[1]] {
			return false, fmt.Sprintf("%d of %d lines; file %s: line %d where %d was due (duplicate or gap)", len(lines), total, m[1], n, next[m[1]])
		}
		next[m[1]]++
	}
	if len(lines) != total {
		return false, fmt.Sprintf("%d of %d lines", len(lines), total)
	}
	return true, ""
}

func waitExactlyOnce(t *testing.T, s *Server, ch string, ws ...*writer) {
	t.Helper()
	waitFor(t, 30*time.Second, "every line exactly once", func() (bool, string) {
		return checkExactlyOnce(t, s, ch, ws...)
	})
}

func TestForwardRotationAndGlob(t *testing.T) {
	t.Parallel()
	s := start(t, "-history", "50000")
	ch := s.createChannel(t, "fwd", "app")
	dir := t.TempDir()
	p := startProxy(t, s.Addrs.Logs)
	app := newWriter(t, "app", filepath.Join(dir, "app.log"))
	appWrite := func(n int) {
		for range n / 10 {
			app.write(t, 10)
		}
	}
	appWrite(500)
	fw := startForwarder(t, ch.Tokens["app"], p.Addr(), filepath.Join(dir, "state.json"),
		filepath.Join(dir, "app.log"), filepath.Join(dir, "new-*.log"))
	// tail -F follows a file it has seen under a followed name.
	waitExactlyOnce(t, s, ch.ID, app)
	appWrite(100)

	// logrotate "create": rename, the app writes on into the renamed
	// file for a while, then reopens the path.
	if err := os.Rename(app.path, filepath.Join(dir, "app.log.1")); err != nil {
		t.Fatal(err)
	}
	appWrite(300)
	app.next()
	app.reopen(t)
	appWrite(300)

	// A file that appears later matching the glob.
	other := newWriter(t, "new", filepath.Join(dir, "new-1.log"))
	other.write(t, 400)
	appWrite(200)

	// copytruncate: copy, truncate in place, the app writes on (O_APPEND).
	// (Lines written between the copy and the truncation are lost by
	// logrotate itself; the test waits for the forwarder to have read up
	// to the copy, as the forwarder cannot see the lines otherwise.)
	waitExactlyOnce(t, s, ch.ID, app, other)
	b, err := os.ReadFile(app.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.log.2"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(app.path, 0); err != nil {
		t.Fatal(err)
	}
	app.next()
	appWrite(400)
	other.write(t, 100)
	waitExactlyOnce(t, s, ch.ID, app, other)

	// SIGTERM stops cleanly; a restart sends nothing twice and picks up.
	fw.stop()
	appWrite(100)
	fw.start()
	waitExactlyOnce(t, s, ch.ID, app, other)
}

func TestForwardCrashesAndLostAnswers(t *testing.T) {
	t.Parallel()
	s := start(t, "-history", "50000")
	ch := s.createChannel(t, "fwd", "app")
	dir := t.TempDir()
	p := startProxy(t, s.Addrs.Logs)
	w1 := newWriter(t, "a", filepath.Join(dir, "a.log"))
	w2 := newWriter(t, "b", filepath.Join(dir, "b.log"))
	fw := startForwarder(t, ch.Tokens["app"], p.Addr(), filepath.Join(dir, "state.json"), filepath.Join(dir, "*.log"))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range 12 {
		w1.write(t, 200+rng.IntN(400))
		w2.write(t, 100+rng.IntN(200))
		if i%3 == 1 {
			p.drop.Add(2) // two 204s lost on their way back
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		fw.kill() // kill -9
		fw.start()
	}
	waitExactlyOnce(t, s, ch.ID, w1, w2)
}

func TestForwardServerDown(t *testing.T) {
	t.Parallel()
	s := start(t, "-history", "50000")
	ch := s.createChannel(t, "fwd", "app")
	dir := t.TempDir()
	p := startProxy(t, s.Addrs.Logs)
	w := newWriter(t, "a", filepath.Join(dir, "a.log"))
	startForwarder(t, ch.Tokens["app"], p.Addr(), filepath.Join(dir, "state.json"), filepath.Join(dir, "a.log"))
	w.write(t, 1000)
	// Unreachable for a while, then restarted (on new ports).
	p.setTarget("")
	w.write(t, 1000)
	time.Sleep(300 * time.Millisecond) // the forwarder meets the closed door
	s.Restart()
	w.write(t, 500)
	p.setTarget(s.Addrs.Logs)
	w.write(t, 500)
	waitExactlyOnce(t, s, ch.ID, w)
}
