package redis

import (
	"context"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/storetest"
	"github.com/plexus-router/plexus/test/redistest"
)

// openTestStore opens a Store on srv and waits until it is ready.
func openTestStore(t testing.TB, srv *redistest.Server, cfg StoreConfig) *Store {
	t.Helper()
	cfg.URL = srv.URL()
	s, err := OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return s
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) channels.Store {
		return openTestStore(t, redistest.Start(t), StoreConfig{})
	})
}
