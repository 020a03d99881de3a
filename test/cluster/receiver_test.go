package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/plexustest"
)

// drainRequest is one POST the receiver got.
type drainRequest struct {
	Path    string
	FrameID string
	Body    string
	Frames  []string
	PID     int // the plexus process that sent it (0: unknown)
	At      time.Time
}

// receiver is an HTTP drain endpoint. It records every request and, on
// Linux, which process opened the connection (by the socket's inode in
// /proc), so a test can tell which node delivered.
type receiver struct {
	t   testing.TB
	ln  net.Listener
	srv *http.Server

	mu   sync.Mutex
	reqs []drainRequest
	bad  []string
	pids func() []int // candidate processes
}

type pidKey struct{}

func startReceiver(t testing.TB) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, ln: ln}
	r.srv = &http.Server{
		Handler: http.HandlerFunc(r.serve),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, pidKey{}, r.connPID(c))
		},
	}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

// URL returns the drain URL for path ("/d1").
func (r *receiver) URL(path string) string { return "http://" + r.ln.Addr().String() + path }

// watchPIDs makes the receiver attribute connections to these processes.
func (r *receiver) watchPIDs(f func() []int) {
	r.mu.Lock()
	r.pids = f
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	frames, err := plexustest.SplitFrames(body)
	pid, _ := req.Context().Value(pidKey{}).(int)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%v in %q", err, tailOf(string(body), 300)))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if c := req.Header.Get("Logplex-Msg-Count"); c != strconv.Itoa(len(frames)) {
		r.bad = append(r.bad, fmt.Sprintf("Logplex-Msg-Count %q for %d frames", c, len(frames)))
	}
	fid := req.Header.Get("Logplex-Frame-Id")
	if fid == "" {
		r.bad = append(r.bad, "request without Logplex-Frame-Id")
	}
	r.reqs = append(r.reqs, drainRequest{Path: req.URL.Path, FrameID: fid, Body: string(body), Frames: frames, PID: pid, At: time.Now()})
	w.WriteHeader(http.StatusOK)
}

// requests returns the requests to path so far ("" for all) and the
// malformed ones.
func (r *receiver) requests(path string) ([]drainRequest, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []drainRequest
	for _, q := range r.reqs {
		if path == "" || q.Path == path {
			out = append(out, q)
		}
	}
	return out, append([]string(nil), r.bad...)
}

// delivered de-duplicates the requests to path by Logplex-Frame-Id and
// returns the frames in delivery order. A frame id seen again must carry
// the same body (a re-sent batch); anything else is a problem.
func delivered(reqs []drainRequest) (frames []string, resent int, problems []string) {
	bodies := map[string]string{}
	for _, q := range reqs {
		if prev, ok := bodies[q.FrameID]; ok {
			if prev != q.Body {
				problems = append(problems, fmt.Sprintf("Logplex-Frame-Id %s re-used for a different body (%d vs %d bytes)", q.FrameID, len(prev), len(q.Body)))
			} else {
				resent++
			}
			continue
		}
		bodies[q.FrameID] = q.Body
		frames = append(frames, q.Frames...)
	}
	return frames, resent, problems
}

// redelivered describes messages delivered again in requests with a new
// Logplex-Frame-Id (not a re-sent batch): how many, in how many requests,
// from which processes, and when relative to since.
func redelivered(reqs []drainRequest, since time.Time) string {
	seen := map[string]bool{}
	ids := map[string]bool{}
	msgs, nreqs := 0, 0
	var firstAt, lastAt time.Duration
	pids := map[int]bool{}
	for _, q := range reqs {
		if ids[q.FrameID] {
			continue
		}
		ids[q.FrameID] = true
		dup := 0
		for _, f := range q.Frames {
			if s, n, ok := parseMsg(f); ok {
				k := fmt.Sprintf("%s %d", s, n)
				if seen[k] {
					dup++
				}
				seen[k] = true
			}
		}
		if dup > 0 {
			if nreqs == 0 {
				firstAt = q.At.Sub(since)
			}
			lastAt = q.At.Sub(since)
			msgs += dup
			nreqs++
			pids[q.PID] = true
		}
	}
	if msgs == 0 {
		return "no message delivered again under a new Logplex-Frame-Id"
	}
	var p []string
	for pid := range pids {
		p = append(p, strconv.Itoa(pid))
	}
	return fmt.Sprintf("%d messages delivered again in %d requests with new Logplex-Frame-Ids (pids %s, %v to %v after the kill/cut)",
		msgs, nreqs, strings.Join(p, ","), firstAt.Round(time.Millisecond), lastAt.Round(time.Millisecond))
}

// count returns how many wanted-looking messages (by parseMsg) arrived at
// path, duplicates included.
func (r *receiver) count(path string) int {
	reqs, _ := r.requests(path)
	n := 0
	for _, q := range reqs {
		for _, f := range q.Frames {
			if _, _, ok := parseMsg(f); ok {
				n++
			}
		}
	}
	return n
}

// waitComplete waits until the de-duplicated frames at path hold every
// wanted message (or timeout) and returns the final check.
func (r *receiver) waitComplete(t testing.TB, path string, w *want, timeout time.Duration) (frames []string, resent int, problems []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		reqs, bad := r.requests(path)
		var p []string
		var missing int
		frames, resent, p = delivered(reqs)
		problems, _, missing = w.check3(frames)
		problems = append(append(p, problems...), bad...)
		if missing == 0 || time.Now().After(deadline) {
			return frames, resent, problems
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connPID finds which watched process owns the other end of c: the
// socket whose local address is c's remote address, looked up in
// /proc/net/tcp and then among the processes' file descriptors.
func (r *receiver) connPID(c net.Conn) int {
	r.mu.Lock()
	pids := r.pids
	r.mu.Unlock()
	if pids == nil {
		return 0
	}
	remote, ok1 := c.RemoteAddr().(*net.TCPAddr)
	local, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0
	}
	inode := socketInode(remote, local)
	if inode == "" {
		return 0
	}
	target := "socket:[" + inode + "]"
	for _, pid := range pids() {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && l == target {
				return pid
			}
		}
	}
	return 0
}

// socketInode returns the inode of the IPv4 TCP socket with local address
// loc and remote address rem, from /proc/net/tcp.
func socketInode(loc, rem *net.TCPAddr) string {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return ""
	}
	want := func(a *net.TCPAddr) string {
		ip := a.IP.To4()
		if ip == nil {
			return ""
		}
		// /proc/net/tcp prints the address as a little-endian word.
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
	}
	l, rm := want(loc), want(rem)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 10 && f[1] == l && f[2] == rm {
			return f[9]
		}
	}
	return ""
}
