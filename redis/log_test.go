package redis

import (
	"context"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/logtest"
	"github.com/plexus-router/plexus/test/redistest"
)

// openTestLog opens a Log on the given servers, closed when the test ends.
func openTestLog(t testing.TB, cfg LogConfig, servers ...*redistest.Server) *Log {
	t.Helper()
	for _, s := range servers {
		cfg.ShardURLs = append(cfg.ShardURLs, s.URL())
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = 50 * time.Millisecond
	}
	if cfg.EpochCheckInterval == 0 {
		cfg.EpochCheckInterval = 200 * time.Millisecond
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 2 * time.Second
	}
	l, err := OpenLog(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenLog: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestLogContract(t *testing.T) {
	srv := redistest.Start(t)
	logtest.Run(t, func(t *testing.T) channels.Log {
		return openTestLog(t, LogConfig{}, srv)
	})
}

// Two shards, no read cache, tiny entries: every read crosses entries.
func TestLogContractTwoShardsSmallEntries(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	logtest.Run(t, func(t *testing.T) channels.Log {
		return openTestLog(t, LogConfig{MaxEntryMessages: 3, ReadCacheBytes: -1}, a, b)
	})
}

// Tiny entries with the read cache.
func TestLogContractSmallEntriesCached(t *testing.T) {
	a := redistest.Start(t)
	logtest.Run(t, func(t *testing.T) channels.Log {
		return openTestLog(t, LogConfig{MaxEntryMessages: 2}, a)
	})
}
