// Package redistest starts real redis-server processes for tests.
//
// Start runs one on a unix socket in a temporary directory with
// `--port 0 --save "" --appendonly no`; StartTCP listens on a loopback TCP
// port instead (for tests that spawn other processes). Both wait until the
// server answers PING and register a cleanup that kills it by PID.
//
// When the redis-server binary is missing the test is skipped loudly, or
// fails when the environment variable CI is "true" (plexustest.Missing).
// REDIS_SERVER names another binary.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/plexustest"
)

// Server is one redis-server process (restartable on the same address).
type Server struct {
	bin     string
	network string // "unix" or "tcp"
	addr    string // socket path or 127.0.0.1:port
	dir     string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// Start starts a redis-server on a unix socket and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := newServer(t, "unix")
	s.dir = tempDir(t)
	s.addr = filepath.Join(s.dir, "redis.sock")
	s.start(t)
	t.Cleanup(func() { s.kill() })
	return s
}

// StartTCP starts a redis-server on a free port of 127.0.0.1 and stops it
// when the test ends.
func StartTCP(t testing.TB) *Server {
	t.Helper()
	s := newServer(t, "tcp")
	s.dir = tempDir(t)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		s.addr = freePort(t)
		if err = s.tryStart(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { s.kill() })
	return s
}

func newServer(t testing.TB, network string) *Server {
	t.Helper()
	bin := os.Getenv("REDIS_SERVER")
	if bin == "" {
		bin = "redis-server"
	}
	path := plexustest.NeedProgram(t, bin, "redis-server")
	return &Server{bin: path, network: network}
}

// tempDir returns a directory whose path is short enough for a unix
// socket (sun_path holds 108 bytes).
func tempDir(t testing.TB) string {
	d := t.TempDir()
	if len(d) < 80 {
		return d
	}
	d, err := os.MkdirTemp("", "redistest")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// URL returns a URL that goredis.ParseURL accepts: unix:///path/redis.sock
// or redis://127.0.0.1:port.
func (s *Server) URL() string {
	if s.network == "unix" {
		return "unix://" + s.addr
	}
	return "redis://" + s.addr
}

// Network returns "unix" or "tcp".
func (s *Server) Network() string { return s.network }

// Addr returns the socket path or host:port.
func (s *Server) Addr() string { return s.addr }

// PID returns the process id of the running server (0 when stopped).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	if err := s.tryStart(); err != nil {
		t.Fatalf("redistest: %v", err)
	}
}

func (s *Server) tryStart() error {
	args := []string{"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"), "--daemonize", "no",
		"--protected-mode", "no", "--databases", "16"}
	if s.network == "unix" {
		os.Remove(s.addr)
		args = append(args, "--port", "0", "--unixsocket", s.addr, "--unixsocketperm", "700")
	} else {
		host, port, _ := net.SplitHostPort(s.addr)
		args = append(args, "--port", port, "--bind", host)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(s.network, s.addr)
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start: %s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s did not answer PING: %v: %s", s.addr, err, s.logTail())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.exited, s.paused = cmd, exited, false
	s.mu.Unlock()
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

func ping(network, addr string) error {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return errors.New("unexpected reply " + strconv.Quote(line))
	}
	return nil
}

// kill stops the process (SIGKILL) and waits for it.
func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited, paused := s.cmd, s.exited, s.paused
	s.cmd, s.exited, s.paused = nil, nil, false
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	if paused {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	<-exited
}

// Stop kills the server (as a crash would: SIGKILL) and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.kill()
}

// Restart kills the server and starts a new, empty one on the same
// address: a shard that lost its data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	s.start(t)
}

// StartAgain starts a stopped server on the same address (empty).
func (s *Server) StartAgain(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		t.Fatalf("redistest: server on %s is running", s.addr)
	}
	s.start(t)
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is
// answered, as with a network partition. Data is kept.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.paused {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("redistest: pause: %v", err)
	}
	s.paused = true
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || !s.paused {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("redistest: resume: %v", err)
	}
	s.paused = false
}
