package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/registry"
)

// StoreConfig configures a Store. Only URL is required.
type StoreConfig struct {
	// URL of the configuration Redis (redis://, rediss:// or unix://).
	URL string
	// ResyncInterval is how often the in-memory copy is compared with
	// Redis to heal missed change notifications (default 10 s). The full
	// scan is skipped while the change counter is unchanged, at most
	// six intervals in a row (changes made by other programs).
	ResyncInterval time.Duration
	Logger         zerolog.Logger
}

// Store is the Redis implementation of channels.Store. Configuration lives
// in Redis under Logplex's keys; every node keeps a copy in a
// registry.Registry for reads and the hot path.
//
// Writes run as Lua scripts (atomic checks: duplicate drain URLs, drain
// limits, the v3 token set), bump a change counter and PUBLISH the changed
// keys on plexus:config. The writing node applies its change to its copy
// before returning; every node re-reads published keys (in a MULTI with
// the counter, so an older read never overwrites a newer one), and a
// periodic resync heals missed notifications. Sessions and drain cursors
// are read from Redis directly.
type Store struct {
	cfg    StoreConfig
	log    zerolog.Logger
	client *goredis.Client
	reg    *registry.Registry

	applyMu    sync.Mutex
	recent     map[string]uint64 // key → version of the newest state applied
	maxVersion uint64

	ready   atomic.Bool
	readyCh chan struct{}
	closed  atomic.Bool
	once    sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	ps     *goredis.PubSub
	notes  chan []string // keys from notifications, to the sync loop
	resync chan struct{} // cap 1: resync as soon as possible
}

var _ channels.Store = (*Store)(nil)

// OpenStore connects to the configuration Redis and starts loading the
// in-memory copy in the background: Ready reports when it is loaded
// (WaitReady waits for it). Mutations wait for the load.
func OpenStore(ctx context.Context, cfg StoreConfig) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("redis store: no URL")
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 10 * time.Second
	}
	c, err := newClient(cfg.URL, 0)
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	s := &Store{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "redis_store").Logger(),
		client:  c,
		reg:     registry.New(),
		recent:  map[string]uint64{},
		readyCh: make(chan struct{}),
		notes:   make(chan []string, 1024),
		resync:  make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ps = c.Subscribe(s.ctx, notifyChannel)
	s.wg.Add(2)
	go s.receive(s.ps)
	go s.syncLoop()
	return s, nil
}

// WaitReady waits until the in-memory copy is loaded.
func (s *Store) WaitReady(ctx context.Context) error {
	select {
	case <-s.readyCh:
		return nil
	case <-ctx.Done():
		return channels.Errorf(channels.CodeUnavailable, "configuration not loaded: %w", ctx.Err())
	case <-s.ctx.Done():
		return channels.ErrClosed
	}
}

// Registry returns the in-memory copy (read it; changes made there are not
// written to Redis).
func (s *Store) Registry() *registry.Registry { return s.reg }

// ChannelIDs lists the channels' ids, sorted (GET /v3/channels).
func (s *Store) ChannelIDs(context.Context) ([]string, error) { return s.reg.ChannelIDs(), nil }

// begin checks the store can take a mutation.
func (s *Store) begin(ctx context.Context) error {
	if s.closed.Load() {
		return channels.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return channels.Errorf(channels.CodeUnavailable, "%w", err)
	}
	return s.WaitReady(ctx)
}

// run runs a script, loading it when the server does not know it.
func (s *Store) run(ctx context.Context, sc *goredis.Script, args ...any) (any, error) {
	v, err := sc.EvalSha(ctx, s.client, nil, args...).Result()
	if goredis.HasErrorPrefix(err, "NOSCRIPT") {
		v, err = sc.Eval(ctx, s.client, nil, args...).Result()
	}
	return v, err
}

// ---- applying records to the copy (s.applyMu held) ----

// fresh reports whether a change at version v of key may be applied, and
// records it.
func (s *Store) fresh(key string, v uint64) bool {
	if s.recent[key] > v {
		return false
	}
	s.recent[key] = v
	return true
}

func (s *Store) applyChannel(v uint64, ch channels.Channel) {
	if s.fresh(channelKey(ch.ID), v) {
		s.reg.PutChannel(ch)
	}
}

// removeChannelRecord removes a channel record but keeps its tokens and
// drains (they are records of their own).
func (s *Store) removeChannelRecord(id string) {
	if _, ok := s.reg.Channel(id); !ok {
		return
	}
	toks := s.reg.ChannelTokens(id)
	drains := s.reg.ChannelDrains(id)
	cursors := map[int64]channels.Cursor{}
	for _, d := range drains {
		if c, ok := s.reg.DrainCursor(d.ID); ok {
			cursors[d.ID] = c
		}
	}
	s.reg.DeleteChannel(id)
	s.reg.PutTokens(toks...)
	for _, d := range drains {
		s.reg.PutDrain(d)
		if c, ok := cursors[d.ID]; ok {
			s.reg.SetDrainCursor(d.ID, c)
		}
	}
}

func (s *Store) applyChannelGone(v uint64, id string) {
	if s.fresh(channelKey(id), v) {
		s.removeChannelRecord(id)
	}
}

func (s *Store) applyTokens(v uint64, ts []channels.Token) {
	put := ts[:0:0]
	for _, t := range ts {
		if s.fresh(tokenKey(t.ID), v) {
			put = append(put, t)
		}
	}
	s.reg.PutTokens(put...)
}

func (s *Store) applyTokensGone(v uint64, ids []string) {
	del := ids[:0:0]
	for _, id := range ids {
		if s.fresh(tokenKey(id), v) {
			del = append(del, id)
		}
	}
	s.reg.DeleteTokens(del...)
}

func (s *Store) applyDrain(v uint64, d channels.Drain) {
	if s.fresh(drainKey(strconv.FormatInt(d.ID, 10)), v) {
		s.reg.PutDrain(d)
	}
}

func (s *Store) applyDrainGone(v uint64, id int64) {
	if s.fresh(drainKey(strconv.FormatInt(id, 10)), v) {
		s.reg.DeleteDrain(id)
	}
}

func (s *Store) applyCred(v uint64, c channels.Cred) {
	if s.fresh(credKey(c.ID), v) {
		s.reg.PutCred(c)
	}
}

func (s *Store) applyCredGone(v uint64, id string) {
	if s.fresh(credKey(id), v) {
		s.reg.DeleteCred(id)
	}
}

func toUint(v any) uint64 {
	switch x := v.(type) {
	case int64:
		if x > 0 {
			return uint64(x)
		}
	case string:
		n, _ := strconv.ParseUint(x, 10, 64)
		return n
	}
	return 0
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// pair decodes a {found, version} script reply.
func pair(res any) (bool, uint64) {
	vals, _ := res.([]any)
	if len(vals) != 2 {
		return false, 0
	}
	return toInt(vals[0]) == 1, toUint(vals[1])
}

// uniqueNames returns names without duplicates, in order of first appearance.
func uniqueNames(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// ---- Store methods ----

// CreateChannel implements channels.Store: the id comes from INCR
// channel_index, skipping ids already in use.
func (s *Store) CreateChannel(ctx context.Context, name string, tokenNames []string) (channels.Channel, []channels.Token, error) {
	if err := s.begin(ctx); err != nil {
		return channels.Channel{}, nil, err
	}
	names := uniqueNames(tokenNames)
	for range 3 {
		args := []any{name}
		toks := make([]channels.Token, len(names))
		for i, n := range names {
			toks[i] = channels.Token{ID: channels.NewToken(), Name: n}
			args = append(args, toks[i].ID, n)
		}
		res, err := s.run(ctx, createChannelScript, args...)
		if goredis.HasErrorPrefix(err, "EXISTS") {
			continue
		}
		if err != nil {
			return channels.Channel{}, nil, unavailable("create channel", err)
		}
		vals, _ := res.([]any)
		if len(vals) != 2 {
			return channels.Channel{}, nil, channels.Errorf(channels.CodeInternal, "create channel: unexpected reply %v", res)
		}
		id, v := toString(vals[0]), toUint(vals[1])
		ch := channels.Channel{ID: id, Name: name}
		for i := range toks {
			toks[i].ChannelID = id
		}
		s.applyMu.Lock()
		s.applyChannel(v, ch)
		s.applyTokens(v, toks)
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			s.reg.SetChannelIndex(n)
		}
		s.applyMu.Unlock()
		channels.SortTokens(toks)
		return ch, toks, nil
	}
	return channels.Channel{}, nil, channels.Errorf(channels.CodeInternal, "could not allocate unique tokens")
}

// PutChannel implements channels.Store.
func (s *Store) PutChannel(ctx context.Context, id string, tokenNames []string, setTokens bool) (channels.Channel, []channels.Token, bool, error) {
	if id == "" {
		return channels.Channel{}, nil, false, channels.Errorf(channels.CodeInvalid, "channel id is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Channel{}, nil, false, err
	}
	names := uniqueNames(tokenNames)
	if !setTokens {
		names = nil
	}
	for range 3 {
		set := "0"
		if setTokens {
			set = "1"
		}
		args := []any{id, set, len(names)}
		for _, n := range names {
			args = append(args, n)
		}
		for range names {
			args = append(args, channels.NewToken())
		}
		for _, t := range s.reg.ChannelTokens(id) {
			args = append(args, t.ID)
		}
		res, err := s.run(ctx, putChannelScript, args...)
		if goredis.HasErrorPrefix(err, "EXISTS") {
			continue
		}
		if err != nil {
			return channels.Channel{}, nil, false, unavailable("put channel", err)
		}
		vals, _ := res.([]any)
		if len(vals) < 5 {
			return channels.Channel{}, nil, false, channels.Errorf(channels.CodeInternal, "put channel: unexpected reply %v", res)
		}
		created, v := toInt(vals[0]) == 1, toUint(vals[1])
		ch := channels.Channel{ID: id, Name: toString(vals[2]), Flags: parseFlags(toString(vals[3])), Retention: parseRetention(toString(vals[4])), RateLimit: parseRateLimit(toString(vals[5]))}
		var toks []channels.Token
		keep := map[string]bool{}
		for i := 6; i+1 < len(vals); i += 2 {
			t := channels.Token{ID: toString(vals[i]), ChannelID: id, Name: toString(vals[i+1])}
			toks = append(toks, t)
			keep[t.ID] = true
		}
		s.applyMu.Lock()
		s.applyChannel(v, ch)
		var gone []string
		for _, t := range s.reg.ChannelTokens(id) {
			if !keep[t.ID] {
				gone = append(gone, t.ID)
			}
		}
		s.applyTokensGone(v, gone)
		s.applyTokens(v, toks)
		s.applyMu.Unlock()
		channels.SortTokens(toks)
		return ch, toks, created, nil
	}
	return channels.Channel{}, nil, false, channels.Errorf(channels.CodeInternal, "could not allocate unique tokens")
}

// SetChannelRetention implements channels.Store: the retention is the
// JSON field "retention" of the ch:<id>:data hash.
func (s *Store) SetChannelRetention(ctx context.Context, id string, r *channels.ChannelRetention) (channels.Channel, error) {
	if err := s.begin(ctx); err != nil {
		return channels.Channel{}, err
	}
	val := ""
	if r != nil {
		b, err := json.Marshal(r)
		if err != nil {
			return channels.Channel{}, channels.Errorf(channels.CodeInternal, "set channel retention: %w", err)
		}
		val = string(b)
	}
	res, err := s.run(ctx, setChannelRetentionScript, id, val)
	if err != nil {
		return channels.Channel{}, unavailable("set channel retention", err)
	}
	vals, _ := res.([]any)
	if len(vals) != 1 {
		return channels.Channel{}, channels.Errorf(channels.CodeInternal, "set channel retention: unexpected reply %v", res)
	}
	if toInt(vals[0]) < 0 {
		return channels.Channel{}, channels.ErrChannelNotFound
	}
	v := toUint(vals[0])
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	ch, ok := s.reg.Channel(id)
	if !ok {
		ch = channels.Channel{ID: id}
	}
	ch.Retention = r.Clone()
	s.applyChannel(v, ch)
	return ch, nil
}

// ChannelRetentions implements channels.Store.
func (s *Store) ChannelRetentions(ctx context.Context) (map[string]channels.ChannelRetention, error) {
	return s.reg.ChannelRetentions(), nil
}

// Channel implements channels.Store.
func (s *Store) Channel(ctx context.Context, id string) (channels.Channel, error) {
	ch, ok := s.reg.Channel(id)
	if !ok {
		return channels.Channel{}, channels.ErrChannelNotFound
	}
	return ch, nil
}

// DeleteChannel implements channels.Store.
func (s *Store) DeleteChannel(ctx context.Context, id string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	toks := s.reg.ChannelTokens(id)
	drains := s.reg.ChannelDrains(id)
	args := []any{id, len(toks)}
	for _, t := range toks {
		args = append(args, t.ID)
	}
	for _, d := range drains {
		args = append(args, d.ID)
	}
	res, err := s.run(ctx, deleteChannelScript, args...)
	if err != nil {
		return unavailable("delete channel", err)
	}
	vals, _ := res.([]any)
	if len(vals) < 2 {
		return channels.Errorf(channels.CodeInternal, "delete channel: unexpected reply %v", res)
	}
	found, v := toInt(vals[0]) == 1, toUint(vals[1])
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if !found && !s.reg.ChannelInUse(id) {
		return channels.ErrChannelNotFound
	}
	var tokIDs []string
	for _, t := range toks {
		tokIDs = append(tokIDs, t.ID)
	}
	for i := 2; i < len(vals); i++ {
		if x := toString(vals[i]); x == "" {
			break
		} else if !slices.Contains(tokIDs, x) {
			tokIDs = append(tokIDs, x)
		}
	}
	if s.fresh(channelKey(id), v) {
		s.reg.DeleteChannel(id)
	}
	s.applyTokensGone(v, tokIDs)
	for _, d := range drains {
		s.applyDrainGone(v, d.ID)
	}
	return nil
}

// CreateToken implements channels.Store.
func (s *Store) CreateToken(ctx context.Context, channelID, name string) (channels.Token, error) {
	if channelID == "" {
		return channels.Token{}, channels.Errorf(channels.CodeInvalid, "channel id is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Token{}, err
	}
	for range 3 {
		t := channels.Token{ID: channels.NewToken(), ChannelID: channelID, Name: name}
		res, err := s.run(ctx, createTokenScript, channelID, t.ID, name)
		if goredis.HasErrorPrefix(err, "EXISTS") {
			continue
		}
		if err != nil {
			return channels.Token{}, unavailable("create token", err)
		}
		s.applyMu.Lock()
		s.applyTokens(toUint(res), []channels.Token{t})
		s.applyMu.Unlock()
		return t, nil
	}
	return channels.Token{}, channels.Errorf(channels.CodeInternal, "could not allocate a unique token")
}

// ChannelTokens implements channels.Store.
func (s *Store) ChannelTokens(ctx context.Context, channelID string) ([]channels.Token, error) {
	return s.reg.ChannelTokens(channelID), nil
}

// ReserveDrain implements channels.Store.
func (s *Store) ReserveDrain(ctx context.Context, channelID string) (channels.Drain, error) {
	if channelID == "" {
		return channels.Drain{}, channels.Errorf(channels.CodeInvalid, "channel id is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Drain{}, err
	}
	tok := channels.NewDrainToken()
	res, err := s.run(ctx, reserveDrainScript, channelID, tok)
	if err != nil {
		return channels.Drain{}, unavailable("reserve drain", err)
	}
	vals, _ := res.([]any)
	if len(vals) != 2 {
		return channels.Drain{}, channels.Errorf(channels.CodeInternal, "reserve drain: unexpected reply %v", res)
	}
	d := channels.Drain{ID: toInt(vals[0]), ChannelID: channelID, Token: tok}
	s.applyMu.Lock()
	s.applyDrain(toUint(vals[1]), d)
	s.applyMu.Unlock()
	return d, nil
}

// drainPairs returns the caller-known drains of a channel as script
// arguments: id, normalized URL.
func (s *Store) drainPairs(channelID string, args []any) []any {
	for _, d := range s.reg.ChannelDrains(channelID) {
		norm := ""
		if d.URL != "" {
			norm = channels.NormalizeDrainURL(d.URL)
		}
		args = append(args, strconv.FormatInt(d.ID, 10), norm)
	}
	return args
}

func drainScriptError(code int64) error {
	switch code {
	case -1:
		return nil
	case -2:
		return channels.ErrTooManyDrains
	case -3:
		return channels.ErrDrainExists
	}
	return channels.Errorf(channels.CodeInternal, "unexpected drain script reply %d", code)
}

// CreateDrain implements channels.Store.
func (s *Store) CreateDrain(ctx context.Context, channelID, url string, maxDrains int) (channels.Drain, error) {
	if url == "" {
		return channels.Drain{}, channels.Errorf(channels.CodeInvalid, "drain URL is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Drain{}, err
	}
	tok := channels.NewDrainToken()
	args := s.drainPairs(channelID, []any{channelID, tok, url, channels.NormalizeDrainURL(url), maxDrains})
	res, err := s.run(ctx, createDrainScript, args...)
	if err != nil {
		return channels.Drain{}, unavailable("create drain", err)
	}
	vals, _ := res.([]any)
	if len(vals) == 1 {
		if code := toInt(vals[0]); code == -1 {
			return channels.Drain{}, channels.ErrChannelNotFound
		} else {
			return channels.Drain{}, drainScriptError(code)
		}
	}
	if len(vals) != 2 {
		return channels.Drain{}, channels.Errorf(channels.CodeInternal, "create drain: unexpected reply %v", res)
	}
	d := channels.Drain{ID: toInt(vals[0]), ChannelID: channelID, Token: tok, URL: url}
	s.applyMu.Lock()
	s.applyDrain(toUint(vals[1]), d)
	s.applyMu.Unlock()
	return d, nil
}

// SetDrainURL implements channels.Store.
func (s *Store) SetDrainURL(ctx context.Context, channelID string, drainID int64, url string, maxDrains int) (channels.Drain, error) {
	if url == "" {
		return channels.Drain{}, channels.Errorf(channels.CodeInvalid, "drain URL is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Drain{}, err
	}
	args := s.drainPairs(channelID, []any{channelID, strconv.FormatInt(drainID, 10), url, channels.NormalizeDrainURL(url), maxDrains})
	res, err := s.run(ctx, setDrainURLScript, args...)
	if err != nil {
		return channels.Drain{}, unavailable("set drain url", err)
	}
	vals, _ := res.([]any)
	if len(vals) == 1 {
		if code := toInt(vals[0]); code == -1 {
			return channels.Drain{}, channels.ErrDrainNotFound
		} else {
			return channels.Drain{}, drainScriptError(code)
		}
	}
	if len(vals) != 3 {
		return channels.Drain{}, channels.Errorf(channels.CodeInternal, "set drain url: unexpected reply %v", res)
	}
	d := channels.Drain{ID: drainID, ChannelID: channelID, Token: toString(vals[2]), URL: url}
	if old, ok := s.reg.Drain(drainID); ok {
		d.DrainOptions = old.DrainOptions
	}
	s.applyMu.Lock()
	s.applyDrain(toUint(vals[1]), d)
	s.applyMu.Unlock()
	return d, nil
}

// SetDrainOptions implements channels.Store.
func (s *Store) SetDrainOptions(ctx context.Context, channelID string, drainID int64, o channels.DrainOptions) (channels.Drain, error) {
	if err := s.begin(ctx); err != nil {
		return channels.Drain{}, err
	}
	res, err := s.run(ctx, setDrainOptionsScript, channelID, strconv.FormatInt(drainID, 10), o.Filter, o.Format)
	if err != nil {
		return channels.Drain{}, unavailable("set drain options", err)
	}
	vals, _ := res.([]any)
	if len(vals) == 1 {
		return channels.Drain{}, channels.ErrDrainNotFound
	}
	if len(vals) != 4 {
		return channels.Drain{}, channels.Errorf(channels.CodeInternal, "set drain options: unexpected reply %v", res)
	}
	d := channels.Drain{ID: drainID, ChannelID: channelID, Token: toString(vals[2]), URL: toString(vals[3]), DrainOptions: o}
	s.applyMu.Lock()
	s.applyDrain(toUint(vals[1]), d)
	s.applyMu.Unlock()
	return d, nil
}

// DeleteDrain implements channels.Store.
func (s *Store) DeleteDrain(ctx context.Context, channelID string, drainID int64) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	res, err := s.run(ctx, deleteDrainScript, channelID, strconv.FormatInt(drainID, 10))
	if err != nil {
		return unavailable("delete drain", err)
	}
	found, v := pair(res)
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if !found {
		if d, ok := s.reg.Drain(drainID); ok && d.ChannelID == channelID {
			// Gone from Redis already: the copy is behind.
			s.applyDrainGone(v, drainID)
		}
		return channels.ErrDrainNotFound
	}
	s.applyDrainGone(v, drainID)
	return nil
}

// Drain implements channels.Store.
func (s *Store) Drain(ctx context.Context, drainID int64) (channels.Drain, error) {
	d, ok := s.reg.Drain(drainID)
	if !ok {
		return channels.Drain{}, channels.ErrDrainNotFound
	}
	return d, nil
}

// ChannelDrains implements channels.Store.
func (s *Store) ChannelDrains(ctx context.Context, channelID string) ([]channels.Drain, error) {
	return s.reg.ChannelDrains(channelID), nil
}

// Drains implements channels.Store.
func (s *Store) Drains(ctx context.Context) ([]channels.Drain, error) {
	return s.reg.Drains(), nil
}

// DrainCursor implements channels.Store: the cursor is read from Redis
// (another node may have delivered since); the local copy answers when
// Redis cannot.
func (s *Store) DrainCursor(ctx context.Context, drainID int64) (channels.Cursor, error) {
	v, err := s.client.HGet(ctx, cursorsKey, strconv.FormatInt(drainID, 10)).Result()
	if errors.Is(err, goredis.Nil) {
		return channels.Cursor{}, nil
	}
	if err != nil {
		c, _ := s.reg.DrainCursor(drainID)
		return c, nil
	}
	c, _ := parseCursor(v)
	s.reg.SetDrainCursor(drainID, c)
	return c, nil
}

// SetDrainCursor implements channels.Store: the cursor is written to Redis
// at once (a node taking the drain over resumes from it). A cursor for a
// drain that does not exist is ignored.
func (s *Store) SetDrainCursor(ctx context.Context, drainID int64, c channels.Cursor) error {
	if s.closed.Load() {
		return channels.ErrClosed
	}
	s.reg.SetDrainCursor(drainID, c)
	if _, err := s.run(ctx, setCursorScript, strconv.FormatInt(drainID, 10), formatCursor(c)); err != nil {
		return unavailable("store drain cursor", err)
	}
	return nil
}

// CreateCred implements channels.Store. The record is Logplex's cred:<id>
// hash (full_api=1, channel=any).
func (s *Store) CreateCred(ctx context.Context, name string, fullAPI, anyChannel bool) (channels.Cred, error) {
	if err := s.begin(ctx); err != nil {
		return channels.Cred{}, err
	}
	fa, ac := "", ""
	if fullAPI {
		fa = "1"
	}
	if anyChannel {
		ac = "any"
	}
	for range 3 {
		c := channels.Cred{ID: channels.NewCredID(), Pass: channels.NewCredPass(), Name: name, FullAPI: fullAPI, AnyChannel: anyChannel}
		res, err := s.run(ctx, createCredScript, c.ID, c.Pass, name, fa, ac)
		if goredis.HasErrorPrefix(err, "EXISTS") {
			continue
		}
		if err != nil {
			return channels.Cred{}, unavailable("create credential", err)
		}
		s.applyMu.Lock()
		s.applyCred(toUint(res), c)
		s.applyMu.Unlock()
		return c, nil
	}
	return channels.Cred{}, channels.Errorf(channels.CodeInternal, "could not allocate a unique credential id")
}

// Creds implements channels.Store.
func (s *Store) Creds(ctx context.Context) ([]channels.Cred, error) {
	return s.reg.Creds(), nil
}

// DeleteCred implements channels.Store.
func (s *Store) DeleteCred(ctx context.Context, id string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	res, err := s.run(ctx, deleteCredScript, id)
	if err != nil {
		return unavailable("delete credential", err)
	}
	found, v := pair(res)
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.applyCredGone(v, id)
	if !found {
		return channels.ErrCredNotFound
	}
	return nil
}

// CreateSession implements channels.Store: SET session:<uuid> with the raw
// body and an expiry (Logplex's SETEX).
func (s *Store) CreateSession(ctx context.Context, body []byte, ttl time.Duration) (channels.Session, error) {
	if ttl <= 0 {
		return channels.Session{}, channels.Errorf(channels.CodeInvalid, "session ttl must be positive")
	}
	if s.closed.Load() {
		return channels.Session{}, channels.ErrClosed
	}
	sess := channels.Session{ID: channels.NewSessionID(), Body: bytes.Clone(body), Expires: time.Now().Add(ttl).Round(0)}
	if sess.Body == nil {
		sess.Body = []byte{}
	}
	if err := s.client.Set(ctx, sessionKey(sess.ID), sess.Body, ttl).Err(); err != nil {
		return channels.Session{}, unavailable("create session", err)
	}
	return sess, nil
}

// Session implements channels.Store (read from Redis: a session created on
// any node is found at once).
func (s *Store) Session(ctx context.Context, id string) (channels.Session, error) {
	if !channels.IsSessionID(id) {
		return channels.Session{}, channels.ErrSessionNotFound
	}
	var get *goredis.StringCmd
	var ttl *goredis.DurationCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, sessionKey(id))
		ttl = p.PTTL(ctx, sessionKey(id))
		return nil
	})
	if errors.Is(get.Err(), goredis.Nil) {
		return channels.Session{}, channels.ErrSessionNotFound
	}
	if err != nil {
		return channels.Session{}, unavailable("read session", err)
	}
	b, _ := get.Bytes()
	sess := channels.Session{ID: id, Body: b}
	if d := ttl.Val(); d > 0 {
		sess.Expires = time.Now().Add(d)
	} else {
		sess.Expires = time.Now().Add(24 * time.Hour) // no expiry set
	}
	return sess, nil
}

// LookupToken implements channels.Store.
func (s *Store) LookupToken(token []byte) (channels.Route, bool) { return s.reg.LookupToken(token) }

// LookupCred implements channels.Store.
func (s *Store) LookupCred(id string) (channels.Cred, bool) { return s.reg.LookupCred(id) }

// Changes implements channels.Store.
func (s *Store) Changes() <-chan struct{} { return s.reg.Changes() }

// Ready implements channels.Store: true once the copy is loaded, until Close.
func (s *Store) Ready() bool { return s.ready.Load() && !s.closed.Load() }

// Close stops following changes and disconnects. Reads keep answering from
// memory; mutations return ErrClosed.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.cancel()
		s.ps.Close() // Receive does not watch its context
		s.wg.Wait()
		s.reg.Close()
		s.client.Close()
	})
	return nil
}
