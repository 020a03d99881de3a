package redistest

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

func client(t *testing.T, url string) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", url, err)
	}
	opt.MaxRetries = -1
	opt.ContextTimeoutEnabled = true
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStartRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *Server
	}{{"unix", Start}, {"tcp", StartTCP}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := tc.start(t)
			c := client(t, s.URL())
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			s.Restart(t)
			var n int64
			var err error
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
				if n, err = c.Exists(ctx, "k").Result(); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil || n != 0 {
				t.Fatalf("EXISTS after Restart = %d, %v; want 0, nil", n, err)
			}
			s.Stop(t)
			if err := c.Ping(ctx).Err(); err == nil {
				t.Fatalf("PING after Stop succeeded")
			}
		})
	}
}

func TestProxyCut(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	p := NewProxy(t, s)
	c := client(t, p.URL())
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING through proxy: %v", err)
	}
	p.Cut()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatalf("PING after Cut succeeded")
	}
}

func TestPauseResume(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	c := client(t, s.URL())
	c.Set(ctx, "k", "v", 0)
	s.Pause(t)
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := c.Get(tctx, "k").Err()
	cancel()
	if err == nil {
		t.Fatalf("GET while paused succeeded")
	}
	s.Resume(t)
	c2 := client(t, s.URL())
	if v, err := c2.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after Resume = %q, %v", v, err)
	}
}
