package redis

import (
	"crypto/md5"
	"math/big"
	"net/url"
	"slices"
	"strings"
)

// sortShardURLs returns the shard URLs in the order Logplex's redis_shard
// uses: by URL fragment when one is present, else by the whole URL.
func sortShardURLs(urls []string) []string {
	s := slices.Clone(urls)
	key := func(raw string) string {
		if u, err := url.Parse(raw); err == nil && u.Fragment != "" {
			return u.Fragment
		}
		return raw
	}
	slices.SortStableFunc(s, func(a, b string) int { return strings.Compare(key(a), key(b)) })
	return s
}

// shardPicker maps a channel id to one of n shards with Logplex's rule:
// interval = floor(2^128 / n) + 1; shard = md5(id) / interval, reading the
// digest as a 128-bit big-endian unsigned integer.
type shardPicker struct {
	n        int
	interval *big.Int
}

func newShardPicker(n int) shardPicker {
	iv := new(big.Int).Lsh(big.NewInt(1), 128)
	iv.Div(iv, big.NewInt(int64(n)))
	iv.Add(iv, big.NewInt(1))
	return shardPicker{n: n, interval: iv}
}

func (p shardPicker) pick(channelID string) int {
	if p.n <= 1 {
		return 0
	}
	sum := md5.Sum([]byte(channelID))
	x := new(big.Int).SetBytes(sum[:])
	return int(x.Div(x, p.interval).Int64())
}
