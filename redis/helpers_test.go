package redis

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/plexus-router/plexus/test/redistest"
)

// testClient returns a client for inspecting or changing srv directly.
func testClient(t testing.TB, srv *redistest.Server) *goredis.Client {
	t.Helper()
	c, err := newClient(srv.URL(), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
