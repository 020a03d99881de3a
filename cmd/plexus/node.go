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
	"time"

	"github.com/google/renameio/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/plexus-router/plexus/api"
	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/drains"
	"github.com/plexus-router/plexus/router"
	"github.com/plexus-router/plexus/syslog"
)

// run starts a node and blocks until ctx is done, then shuts it down in
// order: health answers unavailable, stop accepting, end tail streams,
// flush what was accepted into the channel logs, let drains finish the
// batch in flight and store their positions, close the backends last (the
// embedded log writes its snapshot, the Redis log its buffer).
func run(ctx context.Context, cfg *Config, logger zerolog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := ensureAuthKey(cfg, logger); err != nil {
		return err
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = fmt.Sprintf("%s:%d", host, os.Getpid())
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	be, err := openBackend(ctx, cfg, logger, reg)
	if err != nil {
		return err
	}
	closeBackend := func() {
		if err := be.close(); err != nil {
			logger.Error().Err(err).Msg("closing backend")
		}
	}

	routerMetrics := router.NewMetrics(reg)
	rt := router.New(be.store, be.log, routerMetrics)

	// Syslog listeners bind now so the addresses are known.
	sys := &syslog.Server{
		TCPAddr:     cfg.SyslogAddr,
		UDPAddr:     cfg.SyslogUDPAddr,
		MaxFrame:    cfg.MaxFrame,
		MaxConns:    cfg.MaxConns,
		IdleTimeout: cfg.IdleTimeout,
		Handler:     rt,
		Logger:      logger.With().Str("component", "syslog").Logger(),
		Metrics:     syslog.NewMetrics(reg),
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			closeBackend()
			return fmt.Errorf("tls: %w", err)
		}
		sys.TLSAddr = cfg.TLSAddr
		sys.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if err := sys.Open(); err != nil {
		closeBackend()
		return err
	}

	dm := &drains.Manager{
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
		Ownership: be.ownership,
		Logger:    logger.With().Str("component", "drains").Logger(),
		Metrics:   drains.NewMetrics(reg),
	}

	listeners := map[string]net.Listener{}
	listen := func(name, addr string) error {
		if addr == "" {
			return nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", name, err)
		}
		listeners[name] = l
		return nil
	}
	for _, l := range []struct{ name, addr string }{{"api", cfg.APIAddr}, {"logs", cfg.LogsAddr}, {"v3", cfg.V3Addr}, {"debug", cfg.DebugAddr}} {
		if err := listen(l.name, l.addr); err != nil {
			for _, l := range listeners {
				l.Close()
			}
			sys.Close()
			closeBackend()
			return err
		}
	}
	if cfg.APIURL == "" {
		cfg.APIURL = "http://" + localURLHost(listeners["api"])
	}
	if cfg.V3URL == "" {
		cfg.V3URL = cfg.APIURL
		if l := listeners["v3"]; l != nil {
			cfg.V3URL = "http://" + localURLHost(l)
		}
	}

	apiSrv := &api.Server{
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
		Degraded:      be.degraded,
		Logger:        logger.With().Str("component", "api").Logger(),
		Metrics:       api.NewMetrics(reg),
		Gatherer:      reg,
		DrainStatus:   drainStatus(dm, be),
		Nodes:         be.nodes,
	}

	// Tail streams hang off streamCtx so shutdown can end them before
	// http.Server.Shutdown waits for handlers.
	streamCtx, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	servers := map[string]*http.Server{}
	for name := range listeners {
		var h http.Handler
		switch name {
		case "logs":
			h = apiSrv.LogsHandler()
		case "debug":
			h = debugHandler()
		default:
			h = apiSrv.APIHandler()
		}
		servers[name] = &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			BaseContext:       func(net.Listener) context.Context { return streamCtx },
			ErrorLog:          newStdLogger(logger.With().Str("component", "http").Str("listener", name).Logger()),
		}
	}

	addrs := map[string]string{}
	for name, l := range listeners {
		addrs[name] = l.Addr().String()
	}
	sa := sys.Addrs()
	for name, a := range map[string]net.Addr{"syslog_tcp": sa.TCP, "syslog_udp": sa.UDP, "syslog_tls": sa.TLS} {
		if a != nil {
			addrs[name] = a.String()
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	drainCtx, stopDrains := context.WithCancel(context.Background())
	defer stopDrains()
	// Ingest and delivery start once the config is loaded (a cluster node
	// loads its copy from Redis); until then the API answers the
	// healthchecks and POST /logs with 503 SYSTEM BOOTING and syslog
	// connections wait in the listen backlog.
	ready := make(chan struct{})
	g.Go(func() error {
		start := time.Now()
		for !be.store.Ready() {
			select {
			case <-gctx.Done():
				return nil
			case <-time.After(10 * time.Millisecond):
			}
		}
		logger.Info().Dur("load_time", time.Since(start)).Msg("config loaded")
		close(ready)
		return nil
	})
	g.Go(func() error {
		select {
		case <-ready:
			return dm.Run(drainCtx)
		case <-gctx.Done():
			return nil
		}
	})
	sysCtx, stopSyslog := context.WithCancel(context.Background())
	defer stopSyslog()
	g.Go(func() error {
		select {
		case <-ready:
			return sys.Serve(sysCtx)
		case <-gctx.Done():
			return sys.Close()
		}
	})
	for name, srv := range servers {
		l := listeners[name]
		g.Go(func() error {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server: %w", name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		// 1. stop accepting; the syslog server hands over the frames it
		// has read and flushes them into the logs before Serve returns.
		logger.Info().Msg("shutting down")
		apiSrv.SetShuttingDown()
		stopSyslog()
		endStreams()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancel()
		for name, srv := range servers {
			if err := srv.Shutdown(sctx); err != nil {
				logger.Warn().Err(err).Str("listener", name).Msg("http shutdown")
			}
		}
		// 2. drains finish their in-flight delivery and store their
		// cursors; what is undelivered stays in the log for the next start.
		stopDrains()
		return nil
	})

	if err := writeAddrFile(cfg.AddrFile, addrs); err != nil {
		logger.Error().Err(err).Msg("addr file")
	}
	ev := logger.Info().Str("version", version).Str("node", cfg.NodeID).Str("backend", be.name).Str("data_dir", cfg.DataDir)
	for k, v := range addrs {
		ev = ev.Str(k, v)
	}
	ev.Msg("plexus ready")

	err = g.Wait()
	closeBackend()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info().Msg("stopped")
	return nil
}

// drainStatus answers for drains delivered here with the worker's status,
// and, in a cluster, for drains delivered by another node with that node's
// id and the lag computed from the stored cursor (delivery counters live on
// the owning node: ask it for them).
func drainStatus(dm *drains.Manager, be *backend) func(int64) (channels.DrainStatus, bool) {
	return func(id int64) (channels.DrainStatus, bool) {
		if st, ok := dm.Status(id); ok || be.owner == nil {
			return st, ok
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		owner, err := be.owner(ctx, id)
		if err != nil || owner == "" {
			return channels.DrainStatus{}, false
		}
		st := channels.DrainStatus{Node: owner}
		d, err := be.store.Drain(ctx, id)
		if err != nil {
			return st, true
		}
		cur, err1 := be.store.DrainCursor(ctx, id)
		info, err2 := be.log.Info(ctx, d.ChannelID)
		if err1 == nil && err2 == nil && cur.Offset > 0 && info.Next > cur.Offset {
			st.LagMessages = info.Next - cur.Offset
		}
		return st, true
	}
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
