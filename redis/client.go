package redis

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// newClient connects to one Redis server. Context deadlines are honoured
// and go-redis does not retry on its own: every caller decides whether a
// command may be repeated (most of ours are not idempotent).
func newClient(rawURL string, poolSize int) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	opt.DialTimeout = 2 * time.Second
	opt.DialerRetries = 1 // we retry ourselves; fail fast so health shows it
	opt.ReadTimeout = 5 * time.Second
	opt.WriteTimeout = 5 * time.Second
	opt.PoolTimeout = 5 * time.Second
	opt.DisableIdentity = true
	// Redis 7 does not speak the maintenance-notification handshake, and
	// go-redis's fallback when it fails races with Conn() (-race).
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if poolSize > 0 {
		opt.PoolSize = poolSize
	}
	return goredis.NewClient(opt), nil
}

// redactURL hides a password in a Redis URL for logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid url>"
	}
	return u.Redacted()
}

// isNetErr reports whether err is a transport failure or an error reply
// that says "try again later" rather than "this command is wrong".
func isRetryable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, goredis.ErrClosed) || errors.Is(err, net.ErrClosed) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"NOSCRIPT", "LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	var re goredis.Error
	if errors.As(err, &re) {
		return false // any other error reply
	}
	return true // EOF, connection reset, pool timeout, ...
}
