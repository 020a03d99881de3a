package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
)

// NodesConfig configures a node's registration. Only URL is required.
type NodesConfig struct {
	URL  string // the configuration Redis
	ID   string // this node's id (default: hostname and a random suffix)
	Addr string // advertised address, shown in listings
	// Heartbeat is how often the node renews its registration (default
	// 1 s); TTL is how long a registration lives without renewal
	// (default 5 s): a node that dies leaves the list within TTL.
	Heartbeat time.Duration
	TTL       time.Duration
	Logger    zerolog.Logger
}

// Nodes registers this node in Redis and lists the live ones.
//
// Keys: plexus:node:<id> (hash addr, started_at, seen_at in Unix ms, with
// an expiry of TTL) and plexus:nodes (sorted set of node ids scored by
// their last heartbeat in Redis time, so node clocks do not matter).
type Nodes struct {
	cfg     NodesConfig
	log     zerolog.Logger
	client  *goredis.Client
	started time.Time

	mu   sync.Mutex
	live []string // ids from the last successful heartbeat, sorted

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

const nodesKey = "plexus:nodes"

func nodeKey(id string) string { return "plexus:node:" + id }

// heartbeatScript: KEYS node key; ARGV id, addr, started (ms), ttl (ms).
// Registers the node and returns the ids of the live nodes.
var heartbeatScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'addr', ARGV[2], 'started_at', ARGV[3], 'seen_at', now)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', 'plexus:nodes', now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', 'plexus:nodes', '-inf', now - ttl)
return redis.call('ZRANGEBYSCORE', 'plexus:nodes', now - ttl, '+inf')
`)

// listScript: ARGV ttl (ms). Returns the ids of the live nodes.
var listScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', 'plexus:nodes', now - tonumber(ARGV[1]), '+inf')
`)

// OpenNodes registers the node (if Redis answers) and keeps it registered
// until Close.
func OpenNodes(ctx context.Context, cfg NodesConfig) (*Nodes, error) {
	if cfg.URL == "" {
		return nil, errors.New("redis nodes: no URL")
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "node"
		}
		cfg.ID = host + "-" + channels.RandomHex(3)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	c, err := newClient(cfg.URL, 4)
	if err != nil {
		return nil, fmt.Errorf("redis nodes: %w", err)
	}
	n := &Nodes{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "redis_nodes").Str("node", cfg.ID).Logger(),
		client:  c,
		started: time.Now(),
		done:    make(chan struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	n.beat(hctx)
	cancel()
	go n.run()
	return n, nil
}

// ID returns this node's id.
func (n *Nodes) ID() string { return n.cfg.ID }

func (n *Nodes) beat(ctx context.Context) error {
	res, err := runScript(ctx, n.client, heartbeatScript, []string{nodeKey(n.cfg.ID)},
		n.cfg.ID, n.cfg.Addr, n.started.UnixMilli(), n.cfg.TTL.Milliseconds())
	if err != nil {
		return err
	}
	ids := toStrings(res)
	n.mu.Lock()
	n.live = ids
	n.mu.Unlock()
	return nil
}

func (n *Nodes) run() {
	defer close(n.done)
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Heartbeat)
		err := n.beat(ctx)
		cancel()
		if err != nil && !failing && n.ctx.Err() == nil {
			n.log.Warn().Err(err).Msg("node heartbeat failed")
		}
		failing = err != nil
	}
}

// LiveIDs returns the ids of the live nodes seen by the last heartbeat.
func (n *Nodes) LiveIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.live...)
}

// List returns the live nodes, read from Redis.
func (n *Nodes) List(ctx context.Context) ([]channels.Node, error) {
	res, err := runScript(ctx, n.client, listScript, nil, n.cfg.TTL.Milliseconds())
	if err != nil {
		return nil, unavailable("list nodes", err)
	}
	ids := toStrings(res)
	cmds := make([]*goredis.MapStringStringCmd, len(ids))
	_, err = n.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, nodeKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("list nodes", err)
	}
	out := make([]channels.Node, 0, len(ids))
	for i, id := range ids {
		h := cmds[i].Val()
		if len(h) == 0 {
			continue // expired between the two reads
		}
		started, _ := strconv.ParseInt(h["started_at"], 10, 64)
		seen, _ := strconv.ParseInt(h["seen_at"], 10, 64)
		out = append(out, channels.Node{ID: id, Addr: h["addr"], StartedAt: time.UnixMilli(started).UTC(), SeenAt: time.UnixMilli(seen).UTC()})
	}
	return out, nil
}

// Close stops the heartbeat and removes the registration, so other nodes
// take over this node's drains at once.
func (n *Nodes) Close() error {
	n.once.Do(func() {
		n.cancel()
		<-n.done
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			p.ZRem(ctx, nodesKey, n.cfg.ID)
			p.Del(ctx, nodeKey(n.cfg.ID))
			return nil
		})
		n.client.Close()
	})
	return nil
}

// runScript runs a script, loading it when the server does not know it.
func runScript(ctx context.Context, c *goredis.Client, sc *goredis.Script, keys []string, args ...any) (any, error) {
	v, err := sc.EvalSha(ctx, c, keys, args...).Result()
	if goredis.HasErrorPrefix(err, "NOSCRIPT") {
		v, err = sc.Eval(ctx, c, keys, args...).Result()
	}
	return v, err
}

func toStrings(v any) []string {
	vals, _ := v.([]any)
	out := make([]string, 0, len(vals))
	for _, x := range vals {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
