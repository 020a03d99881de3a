package redis

import (
	"context"
	"encoding/json"

	goredis "github.com/redis/go-redis/v9"

	"github.com/plexus-router/plexus/channels"
)

// A channel's own rate limit is the field rate_limit of ch:<id>:data, as
// JSON ({"messages_per_s":…,"bytes_per_s":…,"burst":…}); absent: none.

// setRateLimitScript: ARGV id, rate limit JSON ("" removes it). Returns
// {found (1/0), version, name, flags, rate limit}.
var setRateLimitScript = goredis.NewScript(storeLuaPrelude + `
local ck = 'ch:' .. ARGV[1] .. ':data'
if redis.call('EXISTS', ck) == 0 then return {0, version()} end
if ARGV[2] == '' then redis.call('HDEL', ck, 'rate_limit') else redis.call('HSET', ck, 'rate_limit', ARGV[2]) end
local v = notify({ck})
local d = redis.call('HMGET', ck, 'name', 'flags', 'rate_limit')
return {1, v, d[1] or '', d[2] or '', d[3] or ''}
`)

// SetChannelRateLimit implements channels.Store.
func (s *Store) SetChannelRateLimit(ctx context.Context, id string, rl *channels.RateLimit) (channels.Channel, error) {
	arg := ""
	if rl != nil {
		if err := rl.Validate(); err != nil {
			return channels.Channel{}, err
		}
		if !rl.IsZero() {
			b, _ := json.Marshal(rl)
			arg = string(b)
		}
	}
	res, err := s.run(ctx, setRateLimitScript, id, arg)
	if err != nil {
		return channels.Channel{}, unavailable("set rate limit", err)
	}
	vals, _ := res.([]any)
	if len(vals) < 2 {
		return channels.Channel{}, channels.Errorf(channels.CodeInternal, "set rate limit: unexpected reply %v", res)
	}
	if toInt(vals[0]) != 1 {
		return channels.Channel{}, channels.ErrChannelNotFound
	}
	if len(vals) < 5 {
		return channels.Channel{}, channels.Errorf(channels.CodeInternal, "set rate limit: unexpected reply %v", res)
	}
	ch := channels.Channel{ID: id, Name: toString(vals[2]), Flags: parseFlags(toString(vals[3])), RateLimit: parseRateLimit(toString(vals[4]))}
	s.applyMu.Lock()
	s.applyChannel(toUint(vals[1]), ch)
	s.applyMu.Unlock()
	return ch, nil
}

// parseRateLimit reads the rate_limit field; anything unreadable or zero
// is no limit of the channel's own.
func parseRateLimit(s string) *channels.RateLimit {
	if s == "" {
		return nil
	}
	var rl channels.RateLimit
	if json.Unmarshal([]byte(s), &rl) != nil || rl.Validate() != nil || rl.IsZero() {
		return nil
	}
	return &rl
}

func sameRateLimit(a, b *channels.RateLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
