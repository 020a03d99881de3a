package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/redis"
)

// openRedisBackend keeps config in the config Redis (with an in-memory
// copy on every node) and channel logs in Redis Streams sharded over the
// shard URLs.
func openRedisBackend(ctx context.Context, cfg *Config, self channels.Node, logger zerolog.Logger, reg prometheus.Registerer) (*backend, error) {
	goredis.SetLogger(redisLogger{logger.With().Str("component", "go-redis").Logger()})
	shards := splitURLs(cfg.ShardURLs)
	if len(shards) == 0 {
		shards = []string{cfg.RedisURL}
	}
	store, err := redis.OpenStore(ctx, redis.StoreConfig{
		URL:    cfg.RedisURL,
		Logger: logger, // the package adds its component
	})
	if err != nil {
		return nil, fmt.Errorf("open redis store: %w", err)
	}
	// The write-behind buffer is durable: a spool under the data dir
	// keeps what this node accepted until Redis has it (see redis.LogConfig).
	var spoolDir string
	if cfg.RedisSpool > 0 {
		spoolDir = filepath.Join(cfg.DataDir, "redis-spool")
	}
	rlog, err := redis.OpenLog(ctx, redis.LogConfig{
		ShardURLs:         shards,
		Default:           channels.Retention{Count: cfg.History, Bytes: cfg.HistoryBytes},
		BufferBytes:       cfg.RedisBuffer,
		SpoolDir:          spoolDir,
		SpoolBytes:        cfg.RedisSpool,
		SpoolSyncInterval: cfg.SyncInterval,
		CloseTimeout:      cfg.ShutdownGrace,
		Logger:            logger,
		Metrics:           redis.NewMetrics(reg),
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open redis log: %w", err)
	}
	nodes, err := redis.OpenNodes(ctx, redis.NodesConfig{
		URL:    cfg.RedisURL,
		ID:     self.ID,
		Addr:   self.Addr,
		Logger: logger,
	})
	if err != nil {
		rlog.Close()
		store.Close()
		return nil, fmt.Errorf("register node: %w", err)
	}
	leases, err := redis.OpenLeases(ctx, redis.LeasesConfig{
		URL:    cfg.RedisURL,
		Nodes:  nodes,
		Drains: store.Drains,
		Logger: logger,
	})
	if err != nil {
		nodes.Close()
		rlog.Close()
		store.Close()
		return nil, fmt.Errorf("drain leases: %w", err)
	}
	logger.Info().Str("backend", "redis").Int("shards", len(shards)).Str("node", nodes.ID()).Msg("backend open")
	cluster := redis.NewCluster(nodes, leases, rlog)
	return &backend{
		name:    "redis",
		store:   store,
		log:     rlog,
		cluster: cluster,
		closers: []func() error{cluster.Close, rlog.Close, store.Close},
	}, nil
}

func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// redisLogger sends go-redis's own messages (pool and reconnect notes,
// otherwise printed as plain text) into the JSON log as warnings.
type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Msgf(format, v...)
}
