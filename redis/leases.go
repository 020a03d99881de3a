package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
)

// LeasesConfig configures drain leases. URL, Nodes and Drains are
// required.
type LeasesConfig struct {
	URL   string // the configuration Redis
	Nodes *Nodes // this node's registration: its id and the live nodes
	// Drains lists the drains to lease (a Store's Drains); drains without a
	// URL are not leased.
	Drains func(ctx context.Context) ([]channels.Drain, error)
	// TTL is a lease's lifetime in Redis (default 5 s); leases are renewed
	// every Renew (default TTL/5). Margin (default TTL/5) is subtracted
	// from the local expiry, measured on the monotonic clock from the
	// moment a renewal was sent: a node that cannot renew stops owning a
	// drain at least Margin before another node can take its lease.
	TTL    time.Duration
	Renew  time.Duration
	Margin time.Duration
	Logger zerolog.Logger
}

// Leases decides which drains this node delivers: each drain has one owner
// at a time, the node holding the key plexus:lease:drain:<id> (SET NX PX,
// renewed while the node lives). The desired owner of a drain is chosen by
// rendezvous hashing over the live nodes, so owners spread over the
// cluster and few drains move when a node comes or goes: a node that is
// not the desired owner stops delivering and releases the lease, and the
// desired owner acquires it. When an owner dies its leases expire and the
// desired owners among the remaining nodes take them within TTL plus a
// renewal period.
//
// Leases implements the drains package's Ownership.
type Leases struct {
	cfg    LeasesConfig
	log    zerolog.Logger
	client *goredis.Client
	self   string

	mu      sync.Mutex
	held    map[int64]time.Time // drain → local expiry (monotonic)
	leaving map[int64]time.Time // drains being handed over → when to release
	subs    []chan struct{}
	closed  bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func leaseKey(drainID int64) string { return "plexus:lease:drain:" + strconv.FormatInt(drainID, 10) }

// renewScript: KEYS lease; ARGV owner, ttl ms. 1 if renewed.
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// releaseScript: KEYS lease; ARGV owner. 1 if released.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// OpenLeases starts leasing.
func OpenLeases(ctx context.Context, cfg LeasesConfig) (*Leases, error) {
	if cfg.URL == "" || cfg.Nodes == nil || cfg.Drains == nil {
		return nil, errors.New("redis leases: URL, Nodes and Drains are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Renew <= 0 {
		cfg.Renew = cfg.TTL / 5
	}
	if cfg.Margin <= 0 {
		cfg.Margin = cfg.TTL / 5
	}
	if cfg.Renew+cfg.Margin >= cfg.TTL {
		return nil, fmt.Errorf("redis leases: Renew (%v) + Margin (%v) must be below TTL (%v)", cfg.Renew, cfg.Margin, cfg.TTL)
	}
	c, err := newClient(cfg.URL, 4)
	if err != nil {
		return nil, fmt.Errorf("redis leases: %w", err)
	}
	l := &Leases{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "redis_leases").Str("node", cfg.Nodes.ID()).Logger(),
		client:  c,
		self:    cfg.Nodes.ID(),
		held:    map[int64]time.Time{},
		leaving: map[int64]time.Time{},
		done:    make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.run()
	return l, nil
}

// Owns reports whether this node delivers the drain now: it holds the
// lease and its local expiry has not passed.
func (l *Leases) Owns(drainID int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	exp, ok := l.held[drainID]
	if !ok {
		return false
	}
	if _, going := l.leaving[drainID]; going {
		return false
	}
	return time.Now().Before(exp)
}

// Owned returns the drains this node owns now.
func (l *Leases) Owned() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	var out []int64
	for id, exp := range l.held {
		if _, going := l.leaving[id]; !going && now.Before(exp) {
			out = append(out, id)
		}
	}
	return out
}

// Owner returns the node holding a drain's lease ("" if none).
func (l *Leases) Owner(ctx context.Context, drainID int64) (string, error) {
	v, err := l.client.Get(ctx, leaseKey(drainID)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", unavailable("read lease", err)
	}
	return v, nil
}

// Changed returns a subscription that receives a value when ownership may
// have changed (coalesced). It is closed by Close.
func (l *Leases) Changed() <-chan struct{} {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		close(ch)
		return ch
	}
	l.subs = append(l.subs, ch)
	return ch
}

func (l *Leases) notifyLocked() {
	for _, ch := range l.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// desired returns the rendezvous owner of a drain among nodes.
func desired(drainID int64, nodes []string) string {
	var best string
	var bestScore uint64
	id := strconv.FormatInt(drainID, 10)
	for _, n := range nodes {
		h := fnv.New64a()
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(id))
		score := mix64(h.Sum64())
		if best == "" || score > bestScore || score == bestScore && n < best {
			best, bestScore = n, score
		}
	}
	return best
}

// mix64 is splitmix64's finalizer (FNV alone spreads similar keys poorly).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (l *Leases) run() {
	defer close(l.done)
	renew := time.NewTicker(l.cfg.Renew)
	defer renew.Stop()
	watch := time.NewTicker(min(100*time.Millisecond, l.cfg.Margin/2))
	defer watch.Stop()
	l.round()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-renew.C:
			l.round()
		case <-watch.C:
			l.expire()
		}
	}
}

// expire drops leases whose local expiry passed (renewals failed) and
// hands over leases whose grace period ended.
func (l *Leases) expire() {
	now := time.Now()
	l.mu.Lock()
	changed := false
	for id, exp := range l.held {
		if !now.Before(exp) {
			delete(l.held, id)
			delete(l.leaving, id)
			changed = true
		}
	}
	var release []int64
	for id, at := range l.leaving {
		if !now.Before(at) {
			release = append(release, id)
		}
	}
	if changed {
		l.notifyLocked()
	}
	l.mu.Unlock()
	if changed {
		l.log.Warn().Msg("drain leases expired without renewal: stopped delivering them")
	}
	if len(release) > 0 {
		l.release(release)
	}
}

// release deletes leases this node handed over (after their grace period).
func (l *Leases) release(ids []int64) {
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.Renew)
	defer cancel()
	cmds := make([]*goredis.Cmd, len(ids))
	_, err := l.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = releaseScript.EvalSha(ctx, p, []string{leaseKey(id)}, l.self)
		}
		return nil
	})
	if err != nil && goredis.HasErrorPrefix(cmds[0].Err(), "NOSCRIPT") {
		releaseScript.Load(ctx, l.client)
		return // retried next time
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, id := range ids {
		if cmds[i].Err() == nil {
			delete(l.held, id)
			delete(l.leaving, id)
		}
	}
}

// round renews held leases, starts handing over drains another node
// should own, and acquires drains this node should own.
func (l *Leases) round() {
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.Renew)
	defer cancel()
	drains, err := l.cfg.Drains(ctx)
	if err != nil {
		return
	}
	live := l.cfg.Nodes.LiveIDs()
	want := map[int64]bool{}
	exists := map[int64]bool{}
	for _, d := range drains {
		if d.URL == "" {
			continue
		}
		exists[d.ID] = true
		if desired(d.ID, live) == l.self {
			want[d.ID] = true
		}
	}

	l.mu.Lock()
	var renew, acquire []int64
	changed := false
	now := time.Now()
	for id := range l.held {
		if _, going := l.leaving[id]; going {
			continue
		}
		if want[id] {
			renew = append(renew, id)
			continue
		}
		// Another node should deliver it (or it is gone): stop now,
		// release after a grace period so our worker has stopped.
		grace := l.cfg.Margin
		if !exists[id] {
			grace = 0
		}
		l.leaving[id] = now.Add(grace)
		changed = true
		renew = append(renew, id) // keep it until released
	}
	for id := range l.leaving {
		if _, ok := l.held[id]; ok && !slicesContains(renew, id) {
			renew = append(renew, id)
		}
	}
	for id := range want {
		if _, ok := l.held[id]; !ok {
			acquire = append(acquire, id)
		}
	}
	if changed {
		l.notifyLocked()
	}
	l.mu.Unlock()

	if len(renew)+len(acquire) == 0 {
		return
	}
	sent := time.Now()
	ttl := l.cfg.TTL.Milliseconds()
	renewCmds := make([]*goredis.Cmd, len(renew))
	acqCmds := make([]*goredis.BoolCmd, len(acquire))
	_, err = l.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range renew {
			renewCmds[i] = renewScript.EvalSha(ctx, p, []string{leaseKey(id)}, l.self, ttl)
		}
		for i, id := range acquire {
			acqCmds[i] = p.SetNX(ctx, leaseKey(id), l.self, l.cfg.TTL)
		}
		return nil
	})
	if err != nil && len(renew) > 0 && goredis.HasErrorPrefix(renewCmds[0].Err(), "NOSCRIPT") {
		renewScript.Load(ctx, l.client)
		releaseScript.Load(ctx, l.client)
	}
	exp := sent.Add(l.cfg.TTL - l.cfg.Margin)
	l.mu.Lock()
	defer l.mu.Unlock()
	changed = false
	for i, id := range renew {
		n, err := renewCmds[i].Int64()
		switch {
		case err == nil && n == 1:
			if _, ok := l.held[id]; ok {
				l.held[id] = exp
			}
		case err == nil && n == 0:
			// Someone else holds it now (our lease expired in Redis).
			if _, ok := l.held[id]; ok {
				delete(l.held, id)
				delete(l.leaving, id)
				changed = true
			}
		}
		// On errors keep the local expiry: it runs out by itself.
	}
	for i, id := range acquire {
		if ok, err := acqCmds[i].Result(); err == nil && ok {
			l.held[id] = exp
			changed = true
		}
	}
	if changed {
		l.notifyLocked()
	}
}

func slicesContains(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Close stops renewing and releases every lease, so other nodes take the
// drains at once. Stop delivering (the drain manager) before closing.
func (l *Leases) Close() error {
	l.once.Do(func() {
		l.cancel()
		<-l.done
		l.mu.Lock()
		ids := make([]int64, 0, len(l.held))
		for id := range l.held {
			ids = append(ids, id)
		}
		l.held = map[int64]time.Time{}
		l.closed = true
		l.notifyLocked()
		for _, ch := range l.subs {
			close(ch)
		}
		l.subs = nil
		l.mu.Unlock()
		if len(ids) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			l.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for _, id := range ids {
					releaseScript.Eval(ctx, p, []string{leaseKey(id)}, l.self)
				}
				return nil
			})
			cancel()
		}
		l.client.Close()
	})
	return nil
}
