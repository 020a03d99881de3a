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
	"github.com/plexus-router/plexus/drains"
)

// backend is the store and log a node runs on, embedded or Redis.
type backend struct {
	name      string
	store     channels.Store
	log       channels.Log
	ownership drains.Ownership                                         // nil: this node delivers every drain
	nodes     func(ctx context.Context) ([]channels.Node, error)       // nil: single node
	degraded  func() string                                            // nil: never degraded
	owner     func(ctx context.Context, drainID int64) (string, error) // nil: this node delivers every drain
	closers   []func() error                                           // in order
}

func (b *backend) close() error {
	var errs []error
	for _, c := range b.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func openBackend(ctx context.Context, cfg *Config, logger zerolog.Logger, reg prometheus.Registerer) (*backend, error) {
	if cfg.RedisURL != "" {
		return openRedisBackend(ctx, cfg, logger, reg)
	}
	return openEmbeddedBackend(cfg, logger)
}

// openEmbeddedBackend keeps config in a journal under the data dir and
// channel logs in memory, snapshotted on clean shutdown.
func openEmbeddedBackend(cfg *Config, logger zerolog.Logger) (*backend, error) {
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
		closers: []func() error{mlog.Close, store.Close},
	}, nil
}

// newStdLogger adapts zerolog for net/http's error log.
func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(l, "", 0)
}
