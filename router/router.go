package router

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/stats"
	"github.com/plexus-router/plexus/syslog"
)

// Errors returned by Ingester.Add and AddRoute. The message was not added.
var (
	ErrMalformed    = errors.New("malformed message")
	ErrUnknownToken = errors.New("unknown token")
	ErrRateLimited  = errors.New("over the channel's rate limit")
)

// TokenLookup is the part of channels.Store the router needs.
// The route's Token is the token looked up.
type TokenLookup interface {
	LookupToken(token []byte) (channels.Route, bool)
}

// Router routes messages to channel logs. It implements syslog.Handler.
type Router struct {
	tokens  TokenLookup
	log     channels.Log
	metrics *Metrics
	now     func() time.Time
	pool    sync.Pool
	stats   *stats.Registry // per-source counts (nil: none); see stats.go

	defLimit atomic.Pointer[channels.RateLimit] // channels without their own limit (nil: none)
	notices  notices                            // channels with drops to report (limit.go)
	fh       *firehose                          // nil: no firehose (firehose.go)
	drops    drops                              // dropped input: log lines and taps (drops.go)
}

// New returns a Router that looks tokens up in tokens and appends to log.
// m may be nil.
func New(tokens TokenLookup, log channels.Log, m *Metrics) *Router {
	if m == nil {
		m = NewMetrics(nil)
	}
	r := &Router{tokens: tokens, log: log, metrics: m, now: time.Now}
	r.notices.init()
	r.drops.init(time.Now)
	r.pool.New = func() any {
		return &Ingester{r: r, byChannel: make(map[string]*channels.Batch), counts: make(map[string]*stats.Channel)}
	}
	return r
}

// Ingester collects messages for one Commit. Not safe for concurrent use.
type Ingester struct {
	r         *Router
	batches   []*channels.Batch          // batches in first-use order
	byChannel map[string]*channels.Batch // channel id → batch in batches
	free      []*channels.Batch
	scratch   []byte                    // RFC 3164 → RFC 5424 conversion
	n         int                       // messages added since the last Commit
	key       string                    // idempotency key of the next Commit
	counts    map[string]*stats.Channel // channel id → its counters, looked up once per Commit
	tallies   []tally                   // counts not yet added to them (stats.go)
	tallyBuf  []byte                    // the tallies' process types

	limitEach bool       // syslog input: each message over its channel's limit is dropped
	nowNs     int64      // time of this read, for the rate limits (0: not taken yet)
	uses      []limitUse // HTTP input: what the request takes from each limiter (limit.go)
	leases    []lease    // syslog input: what it holds of each limiter until the next Commit (limit.go)
	taken     bool       // uses were taken (TakeLimits): refunded if the commit fails
	fhPosts   []int      // firehose copies by firehose channel, counted at commit

	// The routes of this read's tokens, until the next Commit: comparing
	// a few tokens is cheaper than looking one up in the table. A token
	// deleted meanwhile still routes the rest of the read it was deleted
	// during, as if that read had come a moment earlier.
	routes  [routeCacheSize]cachedRoute
	nRoutes int
	evict   int // the entry replaced next when full
}

// routeCacheSize is how many tokens an Ingester remembers per Commit.
const routeCacheSize = 8

type cachedRoute struct {
	rt    channels.Route
	batch *channels.Batch // nil until a message is added
	tally int             // index of the last tally of its messages (-1: none; checked before use)
}

// Ingester returns a pooled Ingester; call Release when done with it.
func (r *Router) Ingester() *Ingester { return r.pool.Get().(*Ingester) }

// Release discards what was not committed and returns in to the pool.
func (in *Ingester) Release() {
	if len(in.tallies) > 0 {
		in.flushTallies()
	}
	in.reset()
	in.limitEach = false
	// Do not keep the memory of an unusually large request around.
	big := len(in.scratch) > 64<<10
	for _, b := range in.free {
		if b.Bytes() > 1<<20 {
			big = true
		}
	}
	if big {
		in.free, in.scratch = nil, nil
	}
	in.r.pool.Put(in)
}

// Len returns the number of messages added since the last Commit.
func (in *Ingester) Len() int { return in.n }

// Add routes msg by its own token (in RFC 5424 APP-NAME, in structured data
// or in an RFC 3164 TAG). RFC 3164 messages are stored as RFC 5424.
func (in *Ingester) Add(msg []byte) error {
	msg, ok := in.normalize(msg)
	if !ok {
		return ErrMalformed
	}
	e, i, j, err := in.route(msg)
	if err != nil {
		return err
	}
	rt := e.rt
	if !in.admit(rt, len(msg)) {
		in.countDropped(rt, msg, stats.RateLimit)
		return ErrRateLimited
	}
	if e.batch == nil {
		e.batch = in.batch(rt.ChannelID)
	}
	e.batch.AddCooked(msg, i, j, rt.Name)
	in.n++
	in.countAfterToken(e, msg, j)
	if in.r.fh != nil {
		in.firehose(rt, msg)
	}
	return nil
}

// AddRoute adds msg to rt's channel (HTTP input authenticated by a token):
// the first occurrence of rt.Token in msg is replaced by rt.Name; a
// message without it is stored as it is, as Logplex does.
func (in *Ingester) AddRoute(rt channels.Route, msg []byte) error {
	msg, ok := in.normalize(msg)
	if !ok {
		return ErrMalformed
	}
	if !in.admit(rt, len(msg)) {
		return ErrRateLimited
	}
	b := in.batch(rt.ChannelID)
	if i, j, ok := syslog.FindToken(msg); ok && string(msg[i:j]) == rt.Token {
		b.AddCooked(msg, i, j, rt.Name)
	} else if i := indexString(msg, rt.Token); i >= 0 {
		b.AddCooked(msg, i, i+len(rt.Token), rt.Name)
	} else {
		b.Add(msg)
	}
	in.n++
	in.count(rt, msg)
	if in.r.fh != nil {
		in.firehose(rt, msg)
	}
	return nil
}

// route finds msg's token (msg[i:j]) and its route. The common case, a
// known token as APP-NAME, skips FindToken's validation: known tokens are
// valid ones.
func (in *Ingester) route(msg []byte) (e *cachedRoute, i, j int, err error) {
	if i, j, ok := syslog.TokenShapedAppName(msg); ok {
		if e := in.lookup(msg[i:j]); e != nil {
			return e, i, j, nil
		}
	}
	i, j, ok := syslog.FindToken(msg)
	if !ok {
		return nil, 0, 0, ErrMalformed
	}
	if e = in.lookup(msg[i:j]); e == nil {
		return nil, 0, 0, ErrUnknownToken
	}
	return e, i, j, nil
}

// lookup returns token's route (nil: unknown) from the Ingester's cache or
// else the table, adding it to the cache.
func (in *Ingester) lookup(token []byte) *cachedRoute {
	for k := 0; k < in.nRoutes; k++ {
		if e := &in.routes[k]; string(token) == e.rt.Token {
			return e
		}
	}
	rt, ok := in.r.tokens.LookupToken(token)
	if !ok {
		return nil
	}
	k := in.nRoutes
	if k < routeCacheSize {
		in.nRoutes++
	} else {
		k, in.evict = in.evict, (in.evict+1)%routeCacheSize
	}
	in.routes[k] = cachedRoute{rt: rt, tally: -1}
	return &in.routes[k]
}

// normalize returns msg as RFC 5424, converting RFC 3164 into in.scratch.
func (in *Ingester) normalize(msg []byte) ([]byte, bool) {
	if len(msg) == 0 {
		return nil, false
	}
	if syslog.Is5424(msg) {
		return msg, true
	}
	out, ok := syslog.To5424(in.scratch[:0], msg, in.r.now())
	if ok {
		in.scratch = out
	}
	return out, ok
}

func (in *Ingester) batch(channelID string) *channels.Batch {
	if b, ok := in.byChannel[channelID]; ok {
		return b
	}
	var b *channels.Batch
	if n := len(in.free); n > 0 {
		b, in.free = in.free[n-1], in.free[:n-1]
	} else {
		b = new(channels.Batch)
	}
	b.ChannelID = channelID
	in.batches = append(in.batches, b)
	in.byChannel[channelID] = b
	return b
}

// SetKey gives the messages added before the next Commit an idempotency
// key (see channels.Batch.Key): a CommitDurable whose key the channel
// already stored stores nothing and succeeds.
func (in *Ingester) SetKey(key string) { in.key = key }

// AppendChannels appends to dst the ids of the channels that messages
// added since the last Commit go to.
func (in *Ingester) AppendChannels(dst []string) []string {
	for _, b := range in.batches {
		dst = append(dst, b.ChannelID)
	}
	return dst
}

// Commit appends everything added since the last Commit to the channel
// logs, all or nothing (see channels.Log.Append). Either way the Ingester
// is empty afterwards.
func (in *Ingester) Commit(ctx context.Context) error {
	return in.commit(ctx, false)
}

// CommitDurable is Commit that returns once the messages are durable (see
// channels.Log.AppendDurable): HTTP input calls it before answering 204.
func (in *Ingester) CommitDurable(ctx context.Context) error {
	return in.commit(ctx, true)
}

func (in *Ingester) commit(ctx context.Context, durable bool) error {
	if len(in.tallies) > 0 {
		in.flushTallies()
	}
	if in.n == 0 {
		return nil
	}
	now := in.r.now().UnixNano()
	for _, b := range in.batches {
		b.Time = now
		b.Key = in.key
	}
	var err error
	if durable {
		err = in.r.log.AppendDurable(ctx, in.batches)
	} else {
		err = in.r.log.Append(ctx, in.batches)
	}
	if err != nil {
		in.refundLimits()
	} else if in.r.fh != nil {
		in.countFirehose()
	}
	in.reset()
	return err
}

func (in *Ingester) reset() {
	for _, b := range in.batches {
		b.Reset()
		in.free = append(in.free, b)
	}
	clear(in.batches)
	in.batches = in.batches[:0]
	clear(in.byChannel)
	clear(in.counts)
	clear(in.routes[:in.nRoutes])
	in.nRoutes, in.evict = 0, 0
	in.n = 0
	in.key = ""
	in.nowNs = 0
	clear(in.uses)
	in.uses = in.uses[:0]
	in.returnLeases()
	in.taken = false
	clear(in.fhPosts)
}

// indexString is bytes.Index(s, []byte(sub)) without the conversion.
func indexString(s []byte, sub string) int {
	if len(sub) == 0 {
		return 0
	}
	for i := 0; i+len(sub) <= len(s); {
		k := bytes.IndexByte(s[i:], sub[0])
		if k < 0 {
			return -1
		}
		i += k
		if i+len(sub) <= len(s) && string(s[i:i+len(sub)]) == sub {
			return i
		}
		i++
	}
	return -1
}
