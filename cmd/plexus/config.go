package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/plexus-router/plexus/api"
	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
	"github.com/plexus-router/plexus/cmd/plexus/client"
	"github.com/plexus-router/plexus/drains"
	"github.com/plexus-router/plexus/redis"
	"github.com/plexus-router/plexus/syslog"
)

// Config is everything a node reads at start, from flags and environment.
type Config struct {
	APIAddr, V3Addr, LogsAddr          string
	SyslogAddr, SyslogUDPAddr, TLSAddr string
	TLSCert, TLSKey                    string
	APITLSCert, APITLSKey              string
	LogsTLSCert, LogsTLSKey            string
	InsecureKey                        bool
	AddrFile                           string
	DataDir                            string
	AuthKey                            string
	APIURL, V3URL                      string
	NodeID                             string

	History      int
	HistoryBytes int64

	Sync          string
	SyncInterval  time.Duration
	CacheBytes    int64
	MaxDisk       int64
	SegmentBytes  int64
	SessionTTL    time.Duration
	MaxFrame      int
	MaxConns      int
	IdleTimeout   time.Duration
	MaxBody       int64
	AppendTimeout time.Duration

	LegacyAPIStatus, APIStatus string
	DenyLogsIngress            bool
	DenyTailSessions           bool

	MaxDrains           int
	DrainRetentionBytes int64
	DrainRetentionAge   time.Duration
	DrainBatchBytes     int
	DrainConnectTimeout time.Duration
	DrainRequestTimeout time.Duration

	RedisURL      string
	ShardURLs     string
	RedisBuffer   int64
	RedisSpool    int64
	ShutdownGrace time.Duration

	LogLevel, LogFormat string
	DebugAddr           string

	// Stream shaping (shaping.go).
	ChannelRate, ChannelBytesRate, ChannelBurst float64
	FirehoseChannelIDs, FirehoseFilterTokens    string
	MetricsChannelID                            string
	MetricsChannelInterval                      time.Duration
}

// option binds one flag to its environment variables (first set wins).
type option struct {
	name string
	envs []string
}

// parseConfig reads flags from args after defaults from env; flags win.
// -h writes the usage to help; errors are returned, not printed.
func parseConfig(args []string, getenv func(string) string, help io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("plexus", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var opts []option
	str := func(p *string, name, def, usage string, envs ...string) {
		fs.StringVar(p, name, def, usage)
		opts = append(opts, option{name, envs})
	}
	integer := func(p *int, name string, def int, usage string, envs ...string) {
		*p = def
		fs.Var((*count)(p), name, usage)
		opts = append(opts, option{name, envs})
	}
	size := func(p *int, name string, def int, usage string, envs ...string) {
		*p = def
		fs.Var((*intSize)(p), name, usage)
		opts = append(opts, option{name, envs})
	}
	bytes := func(p *int64, name string, def int64, usage string, envs ...string) {
		*p = def
		fs.Var((*byteSize)(p), name, usage)
		opts = append(opts, option{name, envs})
	}
	dur := func(p *time.Duration, name string, def time.Duration, usage string, envs ...string) {
		*p = def
		fs.Var((*duration)(p), name, usage)
		opts = append(opts, option{name, envs})
	}
	boolean := func(p *bool, name string, usage string, envs ...string) {
		fs.BoolVar(p, name, false, usage)
		opts = append(opts, option{name, envs})
	}

	str(&c.APIAddr, "api-addr", ":8001", "management API (v1/v2 and v3), sessions and /metrics", "PLEXUS_API_ADDR")
	str(&c.V3Addr, "v3-addr", "", "optional separate listener for the v3 API (Logplex used :8002)", "PLEXUS_V3_ADDR")
	str(&c.LogsAddr, "logs-addr", ":8601", "HTTP log input (POST /logs)", "PLEXUS_LOGS_ADDR")
	str(&c.SyslogAddr, "syslog-addr", ":6001", "TCP syslog input (octet-counted and newline framing); empty disables", "PLEXUS_SYSLOG_ADDR")
	str(&c.SyslogUDPAddr, "syslog-udp-addr", ":6001", "UDP syslog input; empty disables", "PLEXUS_SYSLOG_UDP_ADDR")
	str(&c.TLSAddr, "syslog-tls-addr", ":6514", "TLS syslog input, used when -tls-cert and -tls-key are set", "PLEXUS_SYSLOG_TLS_ADDR")
	str(&c.TLSCert, "tls-cert", "", "PEM certificate for TLS syslog input", "PLEXUS_TLS_CERT")
	str(&c.TLSKey, "tls-key", "", "PEM private key for TLS syslog input", "PLEXUS_TLS_KEY")
	str(&c.APITLSCert, "api-tls-cert", "", "PEM certificate: the API listeners (-api-addr, -v3-addr) serve HTTPS", "PLEXUS_API_TLS_CERT")
	str(&c.APITLSKey, "api-tls-key", "", "PEM private key for -api-tls-cert", "PLEXUS_API_TLS_KEY")
	str(&c.LogsTLSCert, "logs-tls-cert", "", "PEM certificate: the log input listener (-logs-addr) serves HTTPS", "PLEXUS_LOGS_TLS_CERT")
	str(&c.LogsTLSKey, "logs-tls-key", "", "PEM private key for -logs-tls-cert", "PLEXUS_LOGS_TLS_KEY")
	str(&c.AddrFile, "addr-file", "", "write the bound listener addresses as JSON to this file once listening", "PLEXUS_ADDR_FILE")
	str(&c.DataDir, "data-dir", "./data", "where the embedded backend keeps config, cursors and channel logs", "PLEXUS_DATA_DIR")
	str(&c.AuthKey, "auth-key", "", "admin key (clients send 'Authorization: Basic <key>'), at least 16 characters; generated and stored in the data dir when empty", "PLEXUS_AUTH_KEY", "LOGPLEX_AUTH_KEY")
	boolean(&c.InsecureKey, "insecure-key", "accept a weak admin key (under 16 characters, or a sample value such as change-me)", "PLEXUS_INSECURE_KEY")
	str(&c.APIURL, "api-url", "", "public base URL of the API, used in session URLs (default http://localhost:<api port>)", "PLEXUS_API_URL", "LOGPLEX_API_ENDPOINT_URL")
	str(&c.V3URL, "v3-url", "", "public base URL of the v3 API, used in Location headers (default: -api-url)", "PLEXUS_V3_URL", "LOGPLEX_HTTP_V3_URL")
	str(&c.NodeID, "node-id", "", "this node's id in a cluster (default hostname:pid)", "PLEXUS_NODE_ID", "INSTANCE_NAME")

	integer(&c.History, "history", channels.DefaultHistory, "messages of history each channel serves to sessions", "PLEXUS_HISTORY")
	bytes(&c.HistoryBytes, "history-bytes", 0, "optional bound on the bytes of a channel's history (0 = none)", "PLEXUS_HISTORY_BYTES")
	str(&c.Sync, "sync", "interval", "when the embedded log forces appends to disk: interval (group commit every -sync-interval, and at once for POST /logs and for readers waiting), always (every append waits for its commit) or none (left to the OS: survives a killed process, not a power loss)", "PLEXUS_SYNC")
	dur(&c.SyncInterval, "sync-interval", embedded.DefaultSyncInterval, "longest time input nobody waits for (TCP, UDP) stays unsynced under -sync interval", "PLEXUS_SYNC_INTERVAL")
	bytes(&c.CacheBytes, "cache-bytes", embedded.DefaultCacheBytes, "memory holding the newest part of the embedded log; older messages are read from disk", "PLEXUS_CACHE_BYTES")
	bytes(&c.MaxDisk, "max-disk", 0, "bound on the embedded log's files, in bytes (0 = none): past it the oldest are evicted and readers told what they missed", "PLEXUS_MAX_DISK")
	bytes(&c.SegmentBytes, "segment-bytes", embedded.DefaultSegmentBytes, "size of one segment file of the embedded log", "PLEXUS_SEGMENT_BYTES")
	dur(&c.SessionTTL, "session-ttl", api.DefaultSessionTTL, "how long a created session can be fetched", "PLEXUS_SESSION_TTL")
	size(&c.MaxFrame, "max-frame", syslog.DefaultMaxFrame, "largest message accepted, in bytes", "PLEXUS_MAX_FRAME")
	integer(&c.MaxConns, "max-conns", 10000, "concurrent connections per syslog listener", "PLEXUS_MAX_CONNS")
	dur(&c.IdleTimeout, "idle-timeout", 10*time.Minute, "close syslog connections idle this long", "PLEXUS_IDLE_TIMEOUT")
	dur(&c.AppendTimeout, "append-timeout", api.DefaultAppendTimeout, "how long POST /logs waits for room in a full log buffer before answering 503", "PLEXUS_APPEND_TIMEOUT")
	bytes(&c.MaxBody, "max-body", api.DefaultMaxBody, "largest HTTP input body, in bytes (also after gunzip)", "PLEXUS_MAX_BODY")

	str(&c.LegacyAPIStatus, "legacy-api-status", string(api.StatusNormal), "legacy API mode: normal, read_only or disabled", "PLEXUS_LEGACY_API_STATUS", "LEGACY_API_STATUS")
	str(&c.APIStatus, "api-status", string(api.StatusNormal), "v3 API mode: normal, read_only or disabled", "PLEXUS_API_STATUS", "API_STATUS")
	boolean(&c.DenyLogsIngress, "deny-logs-ingress", "answer POST /logs with 503", "PLEXUS_DENY_LOGS_INGRESS", "DENY_LOGS_INGRESS")
	boolean(&c.DenyTailSessions, "deny-tail-sessions", "refuse v3 sessions and do not tail legacy ones", "PLEXUS_DENY_TAIL_SESSIONS", "DENY_TAIL_SESSIONS")

	integer(&c.MaxDrains, "max-drains", api.DefaultMaxDrains, "drains with a URL per channel", "PLEXUS_MAX_DRAINS")
	bytes(&c.DrainRetentionBytes, "drain-retention-bytes", 64<<20, "log a channel with drains keeps for them, in bytes", "PLEXUS_DRAIN_RETENTION_BYTES")
	dur(&c.DrainRetentionAge, "drain-retention-age", time.Hour, "age of the log a channel with drains keeps for them", "PLEXUS_DRAIN_RETENTION_AGE")
	size(&c.DrainBatchBytes, "drain-batch-bytes", drains.DefaultBatchBytes, "target size of one HTTP drain request body", "PLEXUS_DRAIN_BATCH_BYTES")
	dur(&c.DrainConnectTimeout, "drain-connect-timeout", drains.DefaultConnectTimeout, "drain connect timeout", "PLEXUS_DRAIN_CONNECT_TIMEOUT")
	dur(&c.DrainRequestTimeout, "drain-request-timeout", drains.DefaultRequestTimeout, "HTTP drain request timeout", "PLEXUS_DRAIN_REQUEST_TIMEOUT")

	str(&c.RedisURL, "redis-url", "", "config Redis: selects the Redis (cluster) backend", "PLEXUS_REDIS_URL", "LOGPLEX_CONFIG_REDIS_URL")
	str(&c.ShardURLs, "shard-urls", "", "comma-separated Redis URLs holding channel logs (default: -redis-url)", "PLEXUS_SHARD_URLS", "LOGPLEX_SHARD_URLS")
	bytes(&c.RedisBuffer, "redis-buffer-bytes", redis.DefaultBufferBytes, "per shard: accepted messages buffered locally while Redis is slow or away (then POST /logs answers 503, TCP input slows)", "PLEXUS_REDIS_BUFFER_BYTES")
	bytes(&c.RedisSpool, "redis-spool-bytes", redis.DefaultSpoolBytes, "per shard: bound on the files under <data-dir>/redis-spool that keep the buffered messages on disk until Redis has them (full: as a full buffer); 0 keeps them in memory only", "PLEXUS_REDIS_SPOOL_BYTES")
	dur(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "bound on each of the three shutdown steps: (1) appending the frames read from syslog connections and finishing HTTP requests, (2) drains delivering what the channel logs hold (a request in flight at the bound may take -drain-request-timeout more), (3) the Redis log writing its local buffer", "PLEXUS_SHUTDOWN_GRACE")

	str(&c.LogLevel, "log-level", "info", "debug, info, warn or error", "PLEXUS_LOG_LEVEL")
	str(&c.DebugAddr, "debug-addr", "", "serve Go's /debug/pprof on this address (keep it on loopback); empty disables", "PLEXUS_DEBUG_ADDR")
	str(&c.LogFormat, "log-format", "auto", "json, console, or auto (console on a terminal)", "PLEXUS_LOG_FORMAT")

	shapingFlags(c, fs, &opts)

	fs.Usage = func() {}

	// Environment first, so flags override it.
	for _, o := range opts {
		for _, env := range o.envs {
			if v := getenv(env); v != "" {
				if err := fs.Set(o.name, v); err != nil {
					return nil, fmt.Errorf("%s=%q: %w", env, v, err)
				}
				break
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, opts, help)
			return nil, err
		}
		return nil, fmt.Errorf("%w%s (plexus -h lists the flags)", err, flagHint(fs, err))
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (plexus -h lists the commands and flags)", fs.Arg(0))
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	for _, s := range []string{c.LegacyAPIStatus, c.APIStatus} {
		switch api.Status(s) {
		case api.StatusNormal, api.StatusReadOnly, api.StatusDisabled:
		default:
			return fmt.Errorf("api status %q: want normal, read_only or disabled", s)
		}
	}
	if _, err := embedded.ParseSyncPolicy(c.Sync); err != nil {
		return fmt.Errorf("-sync: %w", err)
	}
	if c.SyncInterval <= 0 || c.CacheBytes < 0 || c.MaxDisk < 0 || c.SegmentBytes < 4096 {
		return fmt.Errorf("-sync-interval must be positive, -cache-bytes and -max-disk not negative, -segment-bytes at least 4096")
	}
	if c.History < 1 {
		return fmt.Errorf("-history must be at least 1")
	}
	if c.MaxFrame < 64 || c.MaxFrame > 1<<20 {
		return fmt.Errorf("-max-frame must be between 64 and 1048576")
	}
	if err := c.validateShaping(); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("-tls-cert and -tls-key go together")
	}
	return c.validateSafety()
}

func usage(fs *flag.FlagSet, opts []option, w io.Writer) {
	fmt.Fprintf(w, `Plexus: a Logplex-compatible syslog router.

Usage:
  plexus [flags]      run a node (embedded backend unless -redis-url)
  plexus -version     print the version
`)
	client.Usage(w)
	fmt.Fprintf(w, `
Each command's -h tells more (plexus tail -h). Sizes take units (64MiB, 512KiB),
durations too (500ms, 10s, 1h).

Flags (environment variables in brackets; flags override them):
`)
	envs := map[string][]string{}
	for _, o := range opts {
		envs[o.name] = o.envs
	}
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def != "" && def != "false" && def != "0" {
			def = " (default " + strconv.Quote(def) + ")"
		} else {
			def = ""
		}
		fmt.Fprintf(w, "  -%s [%s]%s\n      %s\n", f.Name, strings.Join(envs[f.Name], ", "), def, f.Usage)
	})
}

// getenv is os.Getenv, a variable for tests.
var getenv = os.Getenv
