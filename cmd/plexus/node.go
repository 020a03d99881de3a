package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/api"
	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/stats"
	"github.com/plexus-router/plexus/drains"
	"github.com/plexus-router/plexus/router"
	"github.com/plexus-router/plexus/syslog"
)

// Node is one Plexus process: its listeners, its backend (embedded or
// Redis) and the parts between them. Open binds and builds, Run serves
// until its context is done, Close shuts down in order:
//
//  1. Input stops: healthchecks answer 503 SHUTTING DOWN and POST /logs
//     refuses; the syslog listeners stop accepting and every frame already
//     read is appended to its channel log; the log input's requests in
//     progress finish; tail streams end; the HTTP servers shut down.
//  2. Drains deliver what the channel logs hold, store their positions and
//     stop.
//  3. The backend closes: the cluster's leases first (other nodes take the
//     drains over at once), then the log (embedded: its snapshot; Redis:
//     its buffer), then the store.
//
// Each step waits at most Config.ShutdownGrace.
type Node struct {
	Config *Config
	Logger zerolog.Logger

	reg     *prometheus.Registry
	be      *backend
	sys     *syslog.Server
	drains  *drains.Manager
	api     *api.Server
	router  *router.Router
	shaping *shaping // L16 notices, internal metrics channel (shaping.go)
	servers []*httpServer
	addrs   map[string]string // bound addresses, by listener name

	endStreams context.CancelFunc // ends tail streams: the API servers' base context
	wg         sync.WaitGroup     // serving goroutines
	errc       chan error         // their failures

	mu      sync.Mutex
	closing bool

	onStep func(step string) // tests: called as each shutdown step begins
}

// httpServer is one HTTP listener and its server.
type httpServer struct {
	name  string
	srv   *http.Server
	ln    net.Listener
	input bool // the log input: shut down before tail streams end
}

// Open prepares the data dir and admin key, binds the HTTP listeners (the
// node is described to the cluster by its bound API address), opens the
// backend, binds the syslog listeners and builds the parts. On error
// nothing stays open.
func (n *Node) Open(ctx context.Context) (err error) {
	cfg := n.Config
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := ensureAuthKey(cfg, n.Logger); err != nil {
		return err
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(n.reg)
	n.addrs = map[string]string{}

	var undo []func() // in reverse on failure
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	listeners := map[string]net.Listener{}
	for _, l := range []struct{ name, addr string }{{"logs", cfg.LogsAddr}, {"api", cfg.APIAddr}, {"v3", cfg.V3Addr}, {"debug", cfg.DebugAddr}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		undo = append(undo, func() { ln.Close() })
		n.addrs[l.name] = ln.Addr().String()
		if ln, err = serveTLS(ln, l.name, cfg); err != nil {
			return err
		}
		listeners[l.name] = ln
	}
	apiScheme := "http://"
	if cfg.APITLSCert != "" {
		apiScheme = "https://"
	}
	if cfg.APIURL == "" {
		cfg.APIURL = apiScheme + localURLHost(listeners["api"])
	}
	if cfg.V3URL == "" {
		cfg.V3URL = cfg.APIURL
		if l := listeners["v3"]; l != nil {
			cfg.V3URL = apiScheme + localURLHost(l)
		}
	}
	self := channels.Node{ID: cfg.NodeID, Addr: strings.TrimRight(cfg.APIURL, "/"), StartedAt: time.Now().UTC()}

	be, err := openBackend(ctx, cfg, self, n.Logger, n.reg)
	if err != nil {
		return err
	}
	undo = append(undo, func() { be.close() })
	n.be = be

	routerMetrics := router.NewMetrics(n.reg)
	rt := router.New(be.store, be.log, routerMetrics)
	rt.SetLogger(n.Logger.With().Str("component", "input").Logger())
	counts := stats.NewRegistry()
	rt.SetStats(counts)
	configureRouter(cfg, rt, n, n.Logger)
	n.router = rt
	n.sys = &syslog.Server{
		TCPAddr:     cfg.SyslogAddr,
		UDPAddr:     cfg.SyslogUDPAddr,
		MaxFrame:    cfg.MaxFrame,
		MaxConns:    cfg.MaxConns,
		IdleTimeout: cfg.IdleTimeout,
		Handler:     rt,
		Logger:      n.Logger.With().Str("component", "syslog").Logger(),
		Metrics:     syslog.NewMetrics(n.reg),
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		n.sys.TLSAddr = cfg.TLSAddr
		n.sys.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if err := n.sys.Open(); err != nil {
		return err
	}
	undo = append(undo, func() { n.sys.Close() })
	sa := n.sys.Addrs()
	for name, a := range map[string]net.Addr{"syslog_tcp": sa.TCP, "syslog_udp": sa.UDP, "syslog_tls": sa.TLS} {
		if a != nil {
			n.addrs[name] = a.String()
		}
	}

	n.drains = &drains.Manager{
		Config: drains.Config{
			Retention:      channels.Retention{Bytes: cfg.DrainRetentionBytes, Age: cfg.DrainRetentionAge, Keep: cfg.History},
			BatchBytes:     cfg.DrainBatchBytes,
			ConnectTimeout: cfg.DrainConnectTimeout,
			RequestTimeout: cfg.DrainRequestTimeout,
			UserAgent:      "Plexus/" + version,
			Node:           cfg.NodeID,
		},
		Store:     be.store,
		Log:       be.log,
		Ownership: be.cluster,
		Logger:    n.Logger.With().Str("component", "drains").Logger(),
		Metrics:   drains.NewMetrics(n.reg),
		Stats:     counts,
	}
	// The log's default, which a channel's own retention changes.
	n.drains.Config.DefaultRetention = channels.Retention{Count: cfg.History, Bytes: cfg.HistoryBytes}
	n.api = &api.Server{
		Config: api.Config{
			AuthKey:       cfg.AuthKey,
			APIURL:        strings.TrimRight(cfg.APIURL, "/"),
			V3URL:         strings.TrimRight(cfg.V3URL, "/"),
			LegacyStatus:  api.Status(cfg.LegacyAPIStatus),
			APIStatus:     api.Status(cfg.APIStatus),
			DenyIngress:   cfg.DenyLogsIngress,
			DenyTails:     cfg.DenyTailSessions,
			MaxDrains:     cfg.MaxDrains,
			History:       cfg.History,
			SessionTTL:    cfg.SessionTTL,
			MaxBody:       cfg.MaxBody,
			MaxFrame:      cfg.MaxFrame,
			AppendTimeout: cfg.AppendTimeout,
		},
		Store:         be.store,
		Log:           be.log,
		Router:        rt,
		RouterMetrics: routerMetrics,
		Cluster:       be.cluster,
		Logger:        n.Logger.With().Str("component", "api").Logger(),
		Metrics:       api.NewMetrics(n.reg),
		Gatherer:      n.reg,
		DrainStatus:   n.drainStatus,
	}

	// Tail streams hang off streamCtx so that shutdown ends them before
	// http.Server.Shutdown waits for handlers. Log input requests do not:
	// they finish.
	streamCtx, endStreams := context.WithCancel(context.Background())
	n.endStreams = endStreams
	for _, name := range []string{"logs", "api", "v3", "debug"} {
		ln := listeners[name]
		if ln == nil {
			continue
		}
		s := &httpServer{name: name, ln: ln, input: name == "logs"}
		s.srv = &http.Server{
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          newStdLogger(n.Logger.With().Str("component", "http").Str("listener", name).Logger()),
		}
		switch name {
		case "logs":
			s.srv.Handler = n.api.LogsHandler()
		case "debug":
			s.srv.Handler = debugHandler()
		default:
			s.srv.Handler = n.api.APIHandler()
			s.srv.BaseContext = func(net.Listener) context.Context { return streamCtx }
		}
		n.servers = append(n.servers, s)
	}
	n.errc = make(chan error, len(n.servers)+1)
	return nil
}

// Run serves until ctx is done (nil) or a listener fails (its error). The
// HTTP servers serve at once (until the config is loaded they answer the
// healthchecks and POST /logs with 503 SYSTEM BOOTING); syslog input and
// drain delivery start once the store's config is loaded (a cluster node
// loads its copy from Redis; syslog connections wait in the listen
// backlog meanwhile). Call Close afterwards in either case.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return nil
	}
	for _, s := range n.servers {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				n.errc <- fmt.Errorf("%s server: %w", s.name, err)
			}
		}()
	}
	n.mu.Unlock()
	if err := writeAddrFile(n.Config.AddrFile, n.addrs); err != nil {
		n.Logger.Error().Err(err).Msg("addr file")
	}

	start := time.Now()
	if err := n.be.store.WaitReady(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while loading
		}
		return fmt.Errorf("load config: %w", err)
	}
	n.Logger.Info().Dur("load_time", time.Since(start)).Msg("config loaded")
	// Channel and drain retention before syslog input and drains start.
	if err := n.drains.ApplyRetention(ctx); err != nil && ctx.Err() == nil {
		n.Logger.Error().Err(err).Msg("apply channel retention")
	}

	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return nil
	}
	n.shaping = startShaping(n, n.router) // stopped in Close
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.drains.Run(context.Background()) // stopped by Shutdown in Close
	}()
	go func() {
		defer n.wg.Done()
		if err := n.sys.Serve(context.Background()); err != nil { // stopped by Shutdown in Close
			n.errc <- fmt.Errorf("syslog server: %w", err)
		}
	}()
	n.mu.Unlock()

	ev := n.Logger.Info().Str("version", version).Str("node", n.Config.NodeID).Str("backend", n.be.name).Str("data_dir", n.Config.DataDir)
	for k, v := range n.addrs {
		ev = ev.Str(k, v)
	}
	ev.Msg("plexus ready")

	select {
	case <-ctx.Done():
		return nil
	case err := <-n.errc:
		return err
	}
}

// Close shuts the node down in the order described on Node, each step
// waiting at most Config.ShutdownGrace (less if ctx ends first), and
// returns the backend's close error (e.g. Redis-buffered messages that
// could not be written). It may be called once, after Open succeeded,
// whether or not Run was called; a Run still waiting for its context then
// keeps waiting, but nothing it started is left running.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return errors.New("node already closed")
	}
	n.closing = true
	n.mu.Unlock()
	grace := n.Config.ShutdownGrace
	n.Logger.Info().Dur("grace", grace).Msg("shutting down")

	// 1. Stop input and wait until everything read is appended; end tail
	// streams; shut the HTTP servers down.
	n.step("input")
	n.api.SetShuttingDown()
	sctx, cancel := context.WithTimeout(ctx, grace)
	if err := n.sys.Shutdown(sctx); err != nil {
		n.Logger.Warn().Err(err).Msg("syslog input: frames read but not appended within the shutdown grace were lost")
	}
	n.shutdownHTTP(sctx, true)
	n.endStreams()
	n.shutdownHTTP(sctx, false)
	cancel()
	n.shaping.stop() // the last L16 notices are appended before drains deliver the rest

	// 2. Drains deliver what the logs hold (input has stopped), store their
	// positions and stop.
	n.step("drains")
	dctx, cancel := context.WithTimeout(ctx, grace)
	if err := n.drains.Shutdown(dctx); err != nil {
		n.Logger.Warn().Err(err).Msg("drains stopped at the shutdown grace: what they did not deliver stays in the logs for the next start (or the node taking them over)")
	}
	cancel()
	n.wg.Wait() // every serving goroutine has returned

	// 3. Close the backend: leases, log, store.
	n.step("backend")
	if err := n.be.close(); err != nil {
		return fmt.Errorf("close backend: %w", err)
	}
	n.Logger.Info().Msg("stopped")
	return nil
}

// shutdownHTTP shuts down the log input server (input) or the others:
// requests in progress may finish until ctx ends, then their connections
// are closed.
func (n *Node) shutdownHTTP(ctx context.Context, input bool) {
	for _, s := range n.servers {
		if s.input != input {
			continue
		}
		if err := s.srv.Shutdown(ctx); err != nil {
			n.Logger.Warn().Err(err).Str("listener", s.name).Msg("http requests still in progress at the shutdown grace: closed")
			s.srv.Close()
		}
		s.ln.Close() // not served if Run was not called
	}
}

func (n *Node) step(name string) {
	n.Logger.Debug().Str("step", name).Msg("shutdown step")
	if n.onStep != nil {
		n.onStep(name)
	}
}

// drainStatus answers for drains delivered here with the worker's status,
// and, in a cluster, for drains delivered by another node with that node's
// id and the lag computed from the stored cursor (delivery counters live on
// the owning node: ask it for them).
func (n *Node) drainStatus(id int64) (channels.DrainStatus, bool) {
	if st, ok := n.drains.Status(id); ok {
		return st, ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	owner, err := n.be.cluster.Owner(ctx, id)
	if err != nil || owner == "" || owner == n.Config.NodeID {
		return channels.DrainStatus{}, false
	}
	st := channels.DrainStatus{Node: owner}
	d, err := n.be.store.Drain(ctx, id)
	if err != nil {
		return st, true
	}
	cur, err1 := n.be.store.DrainCursor(ctx, id)
	info, err2 := n.be.log.Info(ctx, d.ChannelID)
	if err1 == nil && err2 == nil && cur.Offset > 0 && info.Next > cur.Offset {
		st.LagMessages = info.Next - cur.Offset
	}
	return st, true
}

func writeAddrFile(path string, addrs map[string]string) error {
	if path == "" {
		return nil
	}
	b, _ := json.Marshal(addrs)
	return renameio.WriteFile(path, b, 0o644, renameio.WithTempDir(filepath.Dir(path)))
}

// debugHandler serves Go's profiler (net/http/pprof) on its own listener.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// serveTLS wraps the listener named name in TLS when the configuration
// gives it a certificate: -api-tls-cert for the API listeners (api, v3),
// -logs-tls-cert for the log input.
func serveTLS(ln net.Listener, name string, cfg *Config) (net.Listener, error) {
	var certFile, keyFile string
	switch name {
	case "api", "v3":
		certFile, keyFile = cfg.APITLSCert, cfg.APITLSKey
	case "logs":
		certFile, keyFile = cfg.LogsTLSCert, cfg.LogsTLSKey
	}
	if certFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s listener TLS: %w", name, err)
	}
	return tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}), nil
}

// localURLHost turns a listener address into a host:port usable in URLs
// (an unspecified address becomes localhost).
func localURLHost(l net.Listener) string {
	if l == nil {
		return "localhost"
	}
	host, port, _ := net.SplitHostPort(l.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// ensureAuthKey generates an admin key when none is configured, stores it
// in the data dir and prints it once, so the quick start needs no setup.
func ensureAuthKey(cfg *Config, logger zerolog.Logger) error {
	if cfg.AuthKey != "" {
		return nil
	}
	path := filepath.Join(cfg.DataDir, "auth_key")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		cfg.AuthKey = strings.TrimSpace(string(b))
		logger.Info().Str("file", path).Msg("admin key read from the data dir (set PLEXUS_AUTH_KEY to choose one)")
		return nil
	}
	cfg.AuthKey = channels.NewSessionID() // a random UUID, as Logplex's tests use
	if err := os.WriteFile(path, []byte(cfg.AuthKey+"\n"), 0o600); err != nil {
		return fmt.Errorf("store generated admin key: %w", err)
	}
	fmt.Fprintf(os.Stderr, "\nGenerated admin key (stored in %s):\n\n    %s\n\nUse it as: curl -H 'Authorization: Basic %s' ...\n\n", path, cfg.AuthKey, cfg.AuthKey)
	return nil
}
