// Package forward is `plexus forward`: it follows log files (like tail -F)
// or standard input and ships their lines to a Plexus channel over HTTP
// (POST /logs, application/logplex-1), exactly once: every batch carries an
// Idempotency-Key made of host, file identity and starting offset, the
// acknowledged offset of every file is kept in a state file, and reading
// pauses while sending is slow. See docs/forward.md.
package forward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Main runs the forward subcommand and returns the exit code.
func Main(args []string, stdin io.Reader, stderr io.Writer) int {
	cfg, err := ParseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "plexus forward:", err)
		return 2
	}
	// A soft memory limit keeps the heap small: the forwarder's memory is
	// its queued batches, which -queue and -batch-bytes bound.
	debug.SetMemoryLimit(max(28<<20, int64(cfg.Queue+3)*int64(cfg.BatchBytes)*2))
	// The first SIGINT/SIGTERM stops gracefully; a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	fw := New(cfg, stdin, stderr)
	if err := fw.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "plexus forward:", err)
		return 1
	}
	return 0
}

// Forwarder follows the configured files and sends their lines.
type Forwarder struct {
	cfg    *Config
	stdin  io.Reader
	stderr io.Writer
	client *http.Client
	url    string
	auth   string

	state  *state
	saveMu sync.Mutex // one state write at a time, in order

	mu      sync.Mutex
	sources map[devIno]*source
	stdinS  *source
	wg      sync.WaitGroup

	hardStop  chan struct{} // sending gives up
	hardOnce  sync.Once
	failMu    sync.Mutex
	failErr   error
	cancelRun context.CancelFunc

	m      counters
	bodies sync.Pool // batch bodies
}

type counters struct {
	linesRead, linesAcked, dropped, split atomic.Int64
	batches, retries, truncations         atomic.Int64
	bytesSent                             atomic.Int64
}

// New returns a Forwarder; Run starts it.
func New(cfg *Config, stdin io.Reader, stderr io.Writer) *Forwarder {
	u := *cfg.URL
	auth := ""
	if u.User != nil {
		pass, _ := u.User.Password()
		auth = "Basic " + basicAuth(u.User.Username(), pass)
		u.User = nil
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Forwarder{
		cfg: cfg, stdin: stdin, stderr: stderr,
		client:   &http.Client{Transport: tr, Timeout: cfg.Timeout},
		url:      u.String(),
		auth:     auth,
		sources:  make(map[devIno]*source),
		hardStop: make(chan struct{}),
	}
}

func (fw *Forwarder) logf(format string, args ...any) {
	fmt.Fprintf(fw.stderr, "plexus forward: "+format+"\n", args...)
}

// fail stops the forwarder with err (a request that will never succeed).
func (fw *Forwarder) fail(err error) {
	fw.failMu.Lock()
	if fw.failErr == nil {
		fw.failErr = err
	}
	fw.failMu.Unlock()
	if fw.cancelRun != nil {
		fw.cancelRun()
	}
	fw.stopHard()
}

func (fw *Forwarder) stopHard() { fw.hardOnce.Do(func() { close(fw.hardStop) }) }

// Run follows and sends until ctx is done (then it sends what it read for
// up to Grace, saves the state and returns), until a request fails for
// good (the error), or, when only standard input is read, until it ends
// and everything was sent.
func (fw *Forwarder) Run(ctx context.Context) error {
	st, err := loadState(fw.cfg.State)
	if err != nil {
		return err
	}
	fw.state = st
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fw.cancelRun = cancel

	var metricsSrv *http.Server
	if fw.cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", fw.cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		metricsSrv = &http.Server{Handler: fw.metricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		fw.wg.Add(1)
		go func() {
			defer fw.wg.Done()
			_ = metricsSrv.Serve(ln)
		}()
	}

	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	if !fw.cfg.NoInotify {
		if w, err := fsnotify.NewWatcher(); err != nil {
			fw.logf("inotify unavailable (%v): polling every %v", err, fw.cfg.Poll)
		} else {
			defer w.Close()
			for _, d := range fw.watchDirs() {
				if err := w.Add(d); err != nil {
					fw.logf("cannot watch %s (%v): polling it", d, err)
				}
			}
			events, watchErrs = w.Events, w.Errors
		}
	}

	onlyStdin := true
	for _, p := range fw.cfg.Paths {
		if p == "-" {
			fw.startStdin(runCtx)
		} else {
			onlyStdin = false
		}
	}
	fw.scan(runCtx, true)

	poll := time.NewTicker(fw.cfg.Poll)
	defer poll.Stop()
	save := time.NewTicker(fw.cfg.SaveEvery)
	defer save.Stop()
	var progress <-chan time.Time
	if fw.cfg.Progress > 0 {
		t := time.NewTicker(fw.cfg.Progress)
		defer t.Stop()
		progress = t.C
	}
	var stdinDone <-chan struct{}
	if onlyStdin && fw.stdinS != nil {
		stdinDone = fw.stdinS.doneCh()
	}
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-stdinDone:
			break loop
		case ev := <-events:
			if ev.Op&(fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				fw.scan(runCtx, false)
			}
			fw.wakeAll()
		case err := <-watchErrs:
			fw.logf("inotify: %v (polling continues)", err)
			fw.scan(runCtx, false)
		case <-poll.C:
			fw.scan(runCtx, false)
		case <-save.C:
			fw.saveIfDirty()
		case <-progress:
			fw.logf("%s", fw.progressLine())
		}
	}
	cancel()
	grace := time.AfterFunc(fw.cfg.Grace, fw.stopHard)
	fw.waitSources()
	grace.Stop()
	fw.stopHard()
	if metricsSrv != nil {
		_ = metricsSrv.Close()
	}
	fw.wg.Wait()
	err = fw.state.save()
	if fw.cfg.Progress > 0 || fw.failErr != nil {
		fw.logf("stopped: %s", fw.progressLine())
	}
	fw.failMu.Lock()
	defer fw.failMu.Unlock()
	if fw.failErr != nil {
		return fw.failErr
	}
	return err
}

// waitSources waits until every source's goroutines ended.
func (fw *Forwarder) waitSources() {
	for {
		fw.mu.Lock()
		var s *source
		for _, x := range fw.sources {
			s = x
			break
		}
		if s == nil && fw.stdinS != nil {
			s = fw.stdinS
		}
		fw.mu.Unlock()
		if s == nil {
			return
		}
		<-s.doneCh()
		fw.mu.Lock()
		if fw.stdinS == s {
			fw.stdinS = nil
		}
		fw.mu.Unlock()
	}
}

func (fw *Forwarder) saveIfDirty() {
	fw.state.mu.Lock()
	dirty := fw.state.dirty
	fw.state.mu.Unlock()
	if dirty {
		fw.saveState()
	}
}

func (fw *Forwarder) saveState() {
	fw.saveMu.Lock()
	defer fw.saveMu.Unlock()
	if err := fw.state.save(); err != nil {
		fw.logf("%v", err)
	}
}

// watchDirs returns the directories to watch for the patterns (those
// without glob characters; the others are polled).
func (fw *Forwarder) watchDirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range fw.cfg.Paths {
		if p == "-" {
			continue
		}
		d := filepath.Dir(p)
		if strings.ContainsAny(d, `*?[\`) || seen[d] {
			continue
		}
		seen[d] = true
		out = append(out, d)
	}
	return out
}

func (fw *Forwarder) wakeAll() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, s := range fw.sources {
		s.wakeUp()
	}
}

// scan looks for the files the patterns name: new ones are followed,
// followed ones no pattern names any more are marked gone.
func (fw *Forwarder) scan(ctx context.Context, first bool) {
	found := map[devIno]string{}
	for _, p := range fw.cfg.Paths {
		if p == "-" {
			continue
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			continue
		}
		for _, m := range matches {
			fi, err := os.Stat(m)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			if id, ok := identify(fi); ok {
				if _, dup := found[id]; !dup {
					found[id] = m
				}
			}
		}
	}
	now := time.Now()
	fw.mu.Lock()
	for id, s := range fw.sources {
		if _, ok := found[id]; ok {
			s.gone.Store(0)
		} else {
			s.markGone(now)
		}
	}
	var open []devIno
	for id := range found {
		if fw.sources[id] == nil {
			open = append(open, id)
		}
	}
	fw.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	sort.Slice(open, func(i, j int) bool { return found[open[i]] < found[open[j]] })
	for _, id := range open {
		if err := fw.open(ctx, id, found[id], first); err != nil {
			fw.logf("%v", err)
		}
	}
}

// open starts following one file.
func (fw *Forwarder) open(ctx context.Context, id devIno, path string, first bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if got, ok := identify(fi); !ok || got != id {
		f.Close()
		return nil // replaced meanwhile: the next scan sees the new one
	}
	size := fi.Size()
	fw.state.mu.Lock()
	st := fw.state.files[id]
	switch {
	case st == nil:
		st = &fileState{Dev: id.dev, Ino: id.ino}
		if first && fw.cfg.FromEnd {
			st.Acked = size
		}
		fw.state.files[id] = st
	case size < st.Acked || !fpMatches(f, st):
		// Truncated, or another file on a recycled inode.
		st.Gen++
		st.KeyFP, st.FP, st.FPLen, st.Acked, st.Sent = "", "", 0, 0, 0
	}
	st.Path = path
	st.Seen = time.Now().Unix()
	fw.state.dirty = true
	s := &source{
		fw: fw, name: path, f: f, id: id, st: st,
		b:    newBuilder(fw.cfg, fw.appName(path)),
		q:    make(chan *batch, fw.cfg.Queue),
		wake: make(chan struct{}, 1),
		gen:  st.Gen, keyFP: st.KeyFP,
		pos: st.Acked, lineStart: st.Acked, emitted: st.Acked,
		done: make(chan struct{}),
	}
	if st.Sent > st.Acked {
		s.cutAt = st.Sent
	}
	s.acked.Store(st.Acked)
	s.size.Store(size)
	s.lastGrow = time.Now()
	fw.state.mu.Unlock()

	fw.mu.Lock()
	fw.sources[id] = s
	fw.mu.Unlock()
	fw.startSource(ctx, s)
	return nil
}

func fpMatches(f *os.File, st *fileState) bool {
	if st.FPLen == 0 {
		return true
	}
	h, ok := prefixHash(f, st.FPLen)
	return ok && h == st.FP
}

func (fw *Forwarder) appName(path string) string {
	if fw.cfg.App != "" {
		return fw.cfg.App
	}
	if path == "-" {
		return "forward"
	}
	return syslogField(filepath.Base(path), 48)
}

func (fw *Forwarder) startStdin(ctx context.Context) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	ch := make(chan []byte, 4)
	go readStdin(fw.stdin, ch)
	s := &source{
		fw: fw, name: "-", stdinID: "stdin-" + hex.EncodeToString(id[:]),
		b:     newBuilder(fw.cfg, fw.appName("-")),
		q:     make(chan *batch, fw.cfg.Queue),
		wake:  make(chan struct{}, 1),
		stdin: ch,
		done:  make(chan struct{}),
	}
	fw.stdinS = s
	fw.startSource(ctx, s)
}

// startSource runs a source's reader and sender; the sender ends after
// the reader and then releases the source.
func (fw *Forwarder) startSource(ctx context.Context, s *source) {
	go s.run(ctx)
	go func() {
		defer close(s.done)
		s.sendLoop()
		if s.f != nil {
			s.f.Close()
			fw.mu.Lock()
			if fw.sources[s.id] == s {
				delete(fw.sources, s.id)
			}
			fw.mu.Unlock()
		}
	}()
}

func (s *source) doneCh() <-chan struct{} { return s.done }

// progressLine is the one-line summary printed on stderr.
func (fw *Forwarder) progressLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "read %d lines, acked %d, dropped %d, split %d; %d batches, %d retries, %d truncations",
		fw.m.linesRead.Load(), fw.m.linesAcked.Load(), fw.m.dropped.Load(), fw.m.split.Load(),
		fw.m.batches.Load(), fw.m.retries.Load(), fw.m.truncations.Load())
	fw.mu.Lock()
	var lags []string
	for _, s := range fw.sources {
		lags = append(lags, fmt.Sprintf("%s %d B", s.name, max(0, s.size.Load()-s.acked.Load())))
	}
	fw.mu.Unlock()
	sort.Strings(lags)
	if len(lags) > 0 {
		b.WriteString("; lag: ")
		b.WriteString(strings.Join(lags, ", "))
	}
	return b.String()
}
