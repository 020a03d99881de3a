package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/embedded"
)

// backend is what a node runs on, embedded or Redis: the same three
// contracts either way.
type backend struct {
	name    string
	store   channels.Store
	log     channels.Log
	cluster channels.Cluster
	// closers release the backend in order: the cluster's leases and
	// registration (so other nodes take the drains over at once), the log
	// (the embedded log writes its snapshot, the Redis log its buffer),
	// the store.
	closers []func() error
}

func (b *backend) close() error {
	var errs []error
	for _, c := range b.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// openBackend opens the Redis backend when a Redis URL is configured, the
// embedded one otherwise. self describes this node (its id and bound API
// address) to the cluster.
func openBackend(ctx context.Context, cfg *Config, self channels.Node, logger zerolog.Logger, reg prometheus.Registerer) (*backend, error) {
	if cfg.RedisURL != "" {
		return openRedisBackend(ctx, cfg, self, logger, reg)
	}
	return openEmbeddedBackend(cfg, self, logger)
}

// openEmbeddedBackend keeps config in a journal under the data dir and
// channel logs in memory, snapshotted on clean shutdown. The node is alone.
func openEmbeddedBackend(cfg *Config, self channels.Node, logger zerolog.Logger) (*backend, error) {
	store, err := embedded.OpenStore(filepath.Join(cfg.DataDir, "config"))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	mlog, err := embedded.OpenLog(embedded.LogConfig{
		Default: channels.Retention{Count: cfg.History, Bytes: cfg.HistoryBytes},
		Dir:     filepath.Join(cfg.DataDir, "logs"),
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open channel logs: %w", err)
	}
	logger.Info().Str("backend", "embedded").Str("data_dir", cfg.DataDir).Msg("backend open")
	return &backend{
		name:    "embedded",
		store:   store,
		log:     mlog,
		cluster: &channels.SingleNode{Node: self},
		closers: []func() error{mlog.Close, store.Close},
	}, nil
}

// newStdLogger adapts zerolog for net/http's error log.
func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(l, "", 0)
}
