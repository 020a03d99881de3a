package registry

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// Registry is the in-memory model of all configuration: channels, tokens,
// drains, credentials, sessions, drain cursors and the id counters. It does
// no I/O. Both Store backends keep one: the embedded store applies its
// journal to it, the Redis store loads Redis records into it (Replace) and
// applies change notifications (Put*, Delete*).
//
// A Registry is safe for concurrent use. The Put and Delete methods store
// records as given, without validation beyond keeping the indexes
// consistent: the caller (a Store) checks the domain rules first.
//
// LookupToken and LookupCred, the hot-path reads, take no lock: they read
// immutable snapshots published through atomic pointers.
type Registry struct {
	mu         sync.RWMutex
	channels   map[string]channels.Channel
	retained   map[string]struct{} // channels with their own retention
	tokens     map[string]channels.Token
	chanTokens map[string]map[string]struct{} // channel id → token ids
	drains     map[int64]drainEntry
	chanDrains map[string]map[int64]struct{} // channel id → drain ids
	creds      map[string]channels.Cred
	sessions   map[string]channels.Session
	cursors    map[int64]channels.Cursor
	chanIndex  int64 // last channel id allocated by a counter
	drainIndex int64 // last drain id allocated

	limiters map[string]*channels.Limiter // channel id → limiter; kept across Replace (see limits.go)

	routes    atomic.Pointer[routeTable]
	credSnap  atomic.Pointer[map[string]channels.Cred]
	deferSnap bool // bulk loading: snapshots are rebuilt once at the end

	subMu  sync.Mutex
	subs   []chan struct{}
	closed bool
}

type drainEntry struct {
	channels.Drain
	norm string // normalized URL for duplicate checks ("" without URL)
}

// routeTable is an immutable snapshot of token → route. Writers replace it
// copy-on-write; to keep a write cheap with many tokens, recent changes go
// to a small delta map that overrides base and is merged into a new base
// once it grows past about the square root of the base size.
type routeTable struct {
	base  map[string]channels.Route
	delta map[string]routeDelta
}

type routeDelta struct {
	channels.Route
	deleted bool
}

func (t *routeTable) lookup(token []byte) (channels.Route, bool) {
	if len(t.delta) > 0 {
		if d, ok := t.delta[string(token)]; ok {
			return d.Route, !d.deleted
		}
	}
	r, ok := t.base[string(token)]
	return r, ok
}

// State is a full copy of a Registry's records, for Replace (a
// resync from a backend) and State (a snapshot to persist).
type State struct {
	Channels     []channels.Channel
	Tokens       []channels.Token
	Drains       []channels.Drain
	Creds        []channels.Cred
	Sessions     []channels.Session
	Cursors      map[int64]channels.Cursor
	ChannelIndex int64 // last numeric channel id handed out by the counter
	DrainIndex   int64 // last drain id handed out by the counter
}

// New returns an empty Registry.
func New() *Registry {
	r := &Registry{limiters: map[string]*channels.Limiter{}}
	r.reset()
	r.publishRoutes()
	r.publishCreds()
	return r
}

func (r *Registry) reset() {
	r.channels = map[string]channels.Channel{}
	r.retained = map[string]struct{}{}
	r.tokens = map[string]channels.Token{}
	r.chanTokens = map[string]map[string]struct{}{}
	r.drains = map[int64]drainEntry{}
	r.chanDrains = map[string]map[int64]struct{}{}
	r.creds = map[string]channels.Cred{}
	r.sessions = map[string]channels.Session{}
	r.cursors = map[int64]channels.Cursor{}
	r.chanIndex, r.drainIndex = 0, 0
}

// ---- hot path ----

// LookupToken returns the route of a token. It takes no lock and does not
// allocate; token is only read during the call.
func (r *Registry) LookupToken(token []byte) (channels.Route, bool) {
	return r.routes.Load().lookup(token)
}

// LookupCred returns a credential. It takes no lock.
func (r *Registry) LookupCred(id string) (channels.Cred, bool) {
	c, ok := (*r.credSnap.Load())[id]
	return c, ok
}

// ---- subscriptions ----

// Changes returns a new subscription: its channel (buffer of one) receives
// a value after changes to channels, tokens or drains. Signals coalesce and
// never block the writer. The channel is closed by Close; after Close,
// Changes returns a closed channel. There is no unsubscribe: callers
// subscribe once per long-lived consumer.
func (r *Registry) Changes() <-chan struct{} {
	ch := make(chan struct{}, 1)
	r.subMu.Lock()
	defer r.subMu.Unlock()
	if r.closed {
		close(ch)
		return ch
	}
	r.subs = append(r.subs, ch)
	return ch
}

// Notify signals every subscription (what the Put and Delete methods of
// channels, tokens and drains do). A backend may call it after changes it
// applied in a way the Registry cannot see.
func (r *Registry) Notify() {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	for _, ch := range r.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Close closes every subscription. The records stay readable.
func (r *Registry) Close() {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for _, ch := range r.subs {
		close(ch)
	}
	r.subs = nil
}

// ---- snapshots ----

// publishRoutes rebuilds the route table from r.tokens. Caller holds r.mu
// (or owns r exclusively).
func (r *Registry) publishRoutes() {
	base := make(map[string]channels.Route, len(r.tokens))
	for id, t := range r.tokens {
		base[id] = channels.Route{ChannelID: t.ChannelID, Token: t.ID, Name: t.Name, Limiter: r.limiter(t.ChannelID)}
	}
	r.routes.Store(&routeTable{base: base})
}

// updateRoutes publishes a route table with the given tokens set and ids
// removed. Caller holds r.mu for writing.
func (r *Registry) updateRoutes(put []channels.Token, del []string) {
	if r.deferSnap || len(put)+len(del) == 0 {
		return
	}
	old := r.routes.Load()
	delta := make(map[string]routeDelta, len(old.delta)+len(put)+len(del))
	maps.Copy(delta, old.delta)
	for _, t := range put {
		delta[t.ID] = routeDelta{Route: channels.Route{ChannelID: t.ChannelID, Token: t.ID, Name: t.Name, Limiter: r.limiter(t.ChannelID)}}
	}
	for _, id := range del {
		if _, inBase := old.base[id]; inBase {
			delta[id] = routeDelta{deleted: true}
		} else {
			delete(delta, id)
		}
	}
	if len(delta) <= deltaLimit(len(old.base)) {
		r.routes.Store(&routeTable{base: old.base, delta: delta})
		return
	}
	base := make(map[string]channels.Route, len(old.base)+len(delta))
	maps.Copy(base, old.base)
	for id, d := range delta {
		if d.deleted {
			delete(base, id)
		} else {
			base[id] = d.Route
		}
	}
	r.routes.Store(&routeTable{base: base})
}

// deltaLimit is how many changes the route delta holds before it is merged:
// about 2√n, which keeps both the per-write copy and the amortized merge
// cost near √n for n tokens.
func deltaLimit(n int) int {
	s := 1
	for s*s < n {
		s *= 2
	}
	return 64 + 2*s
}

// publishCreds publishes a copy of r.creds. Caller holds r.mu for writing.
func (r *Registry) publishCreds() {
	if r.deferSnap {
		return
	}
	m := maps.Clone(r.creds)
	r.credSnap.Store(&m)
}

// BeginBulk stops snapshot publication until EndBulk, for loading many
// records into a Registry nobody reads yet.
func (r *Registry) BeginBulk() {
	r.mu.Lock()
	r.deferSnap = true
	r.mu.Unlock()
}

func (r *Registry) EndBulk() {
	r.mu.Lock()
	r.deferSnap = false
	r.publishRoutes()
	r.publishCreds()
	r.mu.Unlock()
}

// ---- full state ----

// Replace discards every record and loads st (a full resync). Subscribers
// are notified.
func (r *Registry) Replace(st State) {
	r.mu.Lock()
	r.reset()
	r.deferSnap = true
	for _, c := range st.Channels {
		r.putChannel(c)
	}
	r.putTokens(st.Tokens)
	for _, d := range st.Drains {
		r.putDrain(d)
	}
	for _, c := range st.Creds {
		r.creds[c.ID] = c
	}
	for _, s := range st.Sessions {
		r.sessions[s.ID] = CloneSession(s)
	}
	for id, c := range st.Cursors {
		r.cursors[id] = c
	}
	r.chanIndex, r.drainIndex = st.ChannelIndex, st.DrainIndex
	r.resetLimits()
	r.deferSnap = false
	r.publishRoutes()
	r.publishCreds()
	r.mu.Unlock()
	r.Notify()
}

// State returns a copy of every record, each list sorted by id. Sessions
// that expired before now are left out (a zero now keeps them all).
func (r *Registry) State(now time.Time) State {
	r.mu.RLock()
	defer r.mu.RUnlock()
	st := State{
		Channels:     make([]channels.Channel, 0, len(r.channels)),
		Tokens:       make([]channels.Token, 0, len(r.tokens)),
		Drains:       make([]channels.Drain, 0, len(r.drains)),
		Creds:        make([]channels.Cred, 0, len(r.creds)),
		Sessions:     make([]channels.Session, 0, len(r.sessions)),
		Cursors:      maps.Clone(r.cursors),
		ChannelIndex: r.chanIndex,
		DrainIndex:   r.drainIndex,
	}
	for _, c := range r.channels {
		st.Channels = append(st.Channels, cloneChannel(c))
	}
	for _, t := range r.tokens {
		st.Tokens = append(st.Tokens, t)
	}
	for _, d := range r.drains {
		st.Drains = append(st.Drains, d.Drain)
	}
	for _, c := range r.creds {
		st.Creds = append(st.Creds, c)
	}
	for _, s := range r.sessions {
		if now.IsZero() || s.Expires.After(now) {
			st.Sessions = append(st.Sessions, CloneSession(s))
		}
	}
	slices.SortFunc(st.Channels, func(a, b channels.Channel) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Tokens, func(a, b channels.Token) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Drains, func(a, b channels.Drain) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Creds, func(a, b channels.Cred) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Sessions, func(a, b channels.Session) int { return strings.Compare(a.ID, b.ID) })
	return st
}

// ---- counters ----

// ChannelIndex returns the last numeric channel id handed out (0 if none).
func (r *Registry) ChannelIndex() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.chanIndex
}

// DrainIndex returns the last drain id handed out (0 if none).
func (r *Registry) DrainIndex() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.drainIndex
}

// SetChannelIndex raises the channel counter to n (it never goes down).
func (r *Registry) SetChannelIndex(n int64) {
	r.mu.Lock()
	r.chanIndex = max(r.chanIndex, n)
	r.mu.Unlock()
}

// SetDrainIndex raises the drain counter to n (it never goes down). Drain
// ids of drains put into the Registry raise it too.
func (r *Registry) SetDrainIndex(n int64) {
	r.mu.Lock()
	r.drainIndex = max(r.drainIndex, n)
	r.mu.Unlock()
}

// ---- channels ----

// PutChannel creates or replaces a channel record (tokens and drains are
// untouched) and notifies subscribers.
func (r *Registry) PutChannel(c channels.Channel) {
	r.mu.Lock()
	r.putChannel(c)
	r.mu.Unlock()
	r.Notify()
}

func (r *Registry) putChannel(c channels.Channel) {
	r.channels[c.ID] = cloneChannel(c)
	r.limiter(c.ID).Set(c.RateLimit)
	if c.Retention != nil {
		r.retained[c.ID] = struct{}{}
	} else {
		delete(r.retained, c.ID)
	}
}

// ChannelRetentions returns the own retention of every channel that has
// one, by channel id.
func (r *Registry) ChannelRetentions() map[string]channels.ChannelRetention {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]channels.ChannelRetention, len(r.retained))
	for id := range r.retained {
		if c := r.channels[id]; c.Retention != nil {
			out[id] = *c.Retention.Clone()
		}
	}
	return out
}

// DeleteChannel removes a channel with its tokens, its drains and their
// cursors, and notifies subscribers. It reports whether anything (the
// channel record, a token or a drain) was removed.
func (r *Registry) DeleteChannel(id string) bool {
	r.mu.Lock()
	_, found := r.channels[id]
	delete(r.channels, id)
	delete(r.retained, id)
	var del []string
	for tid := range r.chanTokens[id] {
		del = append(del, tid)
	}
	r.deleteTokens(del)
	var drains []int64
	for did := range r.chanDrains[id] {
		drains = append(drains, did)
	}
	for _, did := range drains {
		r.deleteDrain(did)
	}
	r.dropLimiter(id)
	r.mu.Unlock()
	found = found || len(del) > 0 || len(drains) > 0
	if found {
		r.Notify()
	}
	return found
}

// Channel returns a channel.
func (r *Registry) Channel(id string) (channels.Channel, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.channels[id]
	return cloneChannel(c), ok
}

// ChannelInUse reports whether a channel id has a channel record, tokens
// or drains (tokens and drains may be made for an id without a record).
func (r *Registry) ChannelInUse(id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.channels[id]
	return ok || len(r.chanTokens[id]) > 0 || len(r.chanDrains[id]) > 0
}

// ChannelIDs returns the ids of the channels, sorted.
func (r *Registry) ChannelIDs() []string {
	r.mu.RLock()
	ids := slices.Sorted(maps.Keys(r.channels))
	r.mu.RUnlock()
	return ids
}

// ChannelCount returns the number of channels.
func (r *Registry) ChannelCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.channels)
}

// ---- tokens ----

// PutToken creates or replaces a token (moving it if its channel changed)
// and notifies subscribers.
func (r *Registry) PutToken(t channels.Token) { r.PutTokens(t) }

// PutTokens puts several tokens, publishing one new route snapshot and
// notifying once.
func (r *Registry) PutTokens(ts ...channels.Token) {
	if len(ts) == 0 {
		return
	}
	r.mu.Lock()
	r.putTokens(ts)
	r.mu.Unlock()
	r.Notify()
}

func (r *Registry) putTokens(ts []channels.Token) {
	for _, t := range ts {
		if old, ok := r.tokens[t.ID]; ok && old.ChannelID != t.ChannelID {
			r.unindexToken(old)
		}
		r.tokens[t.ID] = t
		set := r.chanTokens[t.ChannelID]
		if set == nil {
			set = map[string]struct{}{}
			r.chanTokens[t.ChannelID] = set
		}
		set[t.ID] = struct{}{}
	}
	r.updateRoutes(ts, nil)
}

func (r *Registry) unindexToken(t channels.Token) {
	if set := r.chanTokens[t.ChannelID]; set != nil {
		delete(set, t.ID)
		if len(set) == 0 {
			delete(r.chanTokens, t.ChannelID)
		}
	}
}

// DeleteToken removes a token; it reports whether it existed and notifies
// subscribers if so.
func (r *Registry) DeleteToken(id string) bool { return r.DeleteTokens(id) > 0 }

// DeleteTokens removes several tokens, returns how many existed, and
// notifies once if any did.
func (r *Registry) DeleteTokens(ids ...string) int {
	r.mu.Lock()
	n := r.deleteTokens(ids)
	r.mu.Unlock()
	if n > 0 {
		r.Notify()
	}
	return n
}

func (r *Registry) deleteTokens(ids []string) int {
	var gone []string
	for _, id := range ids {
		t, ok := r.tokens[id]
		if !ok {
			continue
		}
		delete(r.tokens, id)
		r.unindexToken(t)
		gone = append(gone, id)
	}
	r.updateRoutes(nil, gone)
	return len(gone)
}

// Token returns a token by id.
func (r *Registry) Token(id string) (channels.Token, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.tokens[id]
	return t, ok
}

// ChannelTokens returns the tokens of a channel (whether or not the channel
// record exists) sorted by name, then id.
func (r *Registry) ChannelTokens(channelID string) []channels.Token {
	r.mu.RLock()
	set := r.chanTokens[channelID]
	ts := make([]channels.Token, 0, len(set))
	for id := range set {
		ts = append(ts, r.tokens[id])
	}
	r.mu.RUnlock()
	channels.SortTokens(ts)
	return ts
}

// TokenCount returns the number of tokens.
func (r *Registry) TokenCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.tokens)
}

// ---- drains ----

// PutDrain creates or replaces a drain (moving it if its channel changed;
// its cursor is kept), raises the drain counter to its id, and notifies
// subscribers.
func (r *Registry) PutDrain(d channels.Drain) {
	r.mu.Lock()
	r.putDrain(d)
	r.mu.Unlock()
	r.Notify()
}

func (r *Registry) putDrain(d channels.Drain) {
	if old, ok := r.drains[d.ID]; ok && old.ChannelID != d.ChannelID {
		r.unindexDrain(old.Drain)
	}
	e := drainEntry{Drain: d}
	if d.URL != "" {
		e.norm = channels.NormalizeDrainURL(d.URL)
	}
	r.drains[d.ID] = e
	set := r.chanDrains[d.ChannelID]
	if set == nil {
		set = map[int64]struct{}{}
		r.chanDrains[d.ChannelID] = set
	}
	set[d.ID] = struct{}{}
	r.drainIndex = max(r.drainIndex, d.ID)
}

func (r *Registry) unindexDrain(d channels.Drain) {
	if set := r.chanDrains[d.ChannelID]; set != nil {
		delete(set, d.ID)
		if len(set) == 0 {
			delete(r.chanDrains, d.ChannelID)
		}
	}
}

// DeleteDrain removes a drain and its cursor; it reports whether the drain
// existed and notifies subscribers if so.
func (r *Registry) DeleteDrain(id int64) bool {
	r.mu.Lock()
	ok := r.deleteDrain(id)
	r.mu.Unlock()
	if ok {
		r.Notify()
	}
	return ok
}

func (r *Registry) deleteDrain(id int64) bool {
	d, ok := r.drains[id]
	if !ok {
		return false
	}
	delete(r.drains, id)
	delete(r.cursors, id)
	r.unindexDrain(d.Drain)
	return true
}

// Drain returns a drain by id.
func (r *Registry) Drain(id int64) (channels.Drain, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.drains[id]
	return d.Drain, ok
}

// ChannelDrains returns the drains of a channel (whether or not the channel
// record exists) sorted by id.
func (r *Registry) ChannelDrains(channelID string) []channels.Drain {
	r.mu.RLock()
	set := r.chanDrains[channelID]
	ds := make([]channels.Drain, 0, len(set))
	for id := range set {
		ds = append(ds, r.drains[id].Drain)
	}
	r.mu.RUnlock()
	sortDrains(ds)
	return ds
}

// Drains returns every drain sorted by id.
func (r *Registry) Drains() []channels.Drain {
	r.mu.RLock()
	ds := make([]channels.Drain, 0, len(r.drains))
	for _, d := range r.drains {
		ds = append(ds, d.Drain)
	}
	r.mu.RUnlock()
	sortDrains(ds)
	return ds
}

func sortDrains(ds []channels.Drain) {
	slices.SortFunc(ds, func(a, b channels.Drain) int { return cmp.Compare(a.ID, b.ID) })
}

// DrainURLTaken reports whether a drain of the channel other than except
// (0 = none) has a URL equal to url once both are normalized (see
// NormalizeDrainURL).
func (r *Registry) DrainURLTaken(channelID, url string, except int64) bool {
	norm := channels.NormalizeDrainURL(url)
	r.mu.RLock()
	defer r.mu.RUnlock()
	for id := range r.chanDrains[channelID] {
		if d := r.drains[id]; id != except && d.norm != "" && d.norm == norm {
			return true
		}
	}
	return false
}

// DrainsWithURL counts a channel's drains that have a URL (reserved drains
// do not count against the maximum).
func (r *Registry) DrainsWithURL(channelID string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for id := range r.chanDrains[channelID] {
		if r.drains[id].URL != "" {
			n++
		}
	}
	return n
}

// ---- cursors ----

// DrainCursor returns the stored cursor of a drain.
func (r *Registry) DrainCursor(id int64) (channels.Cursor, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.cursors[id]
	return c, ok
}

// SetDrainCursor stores the cursor of an existing drain; it reports false
// (and stores nothing) when the drain is unknown.
func (r *Registry) SetDrainCursor(id int64, c channels.Cursor) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.drains[id]; !ok {
		return false
	}
	r.cursors[id] = c
	return true
}

// Cursors returns a copy of every stored drain cursor.
func (r *Registry) Cursors() map[int64]channels.Cursor {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.cursors)
}

// ---- credentials ----

// PutCred creates or replaces a credential.
func (r *Registry) PutCred(c channels.Cred) {
	r.mu.Lock()
	r.creds[c.ID] = c
	r.publishCreds()
	r.mu.Unlock()
}

// DeleteCred removes a credential and reports whether it existed.
func (r *Registry) DeleteCred(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.creds[id]; !ok {
		return false
	}
	delete(r.creds, id)
	r.publishCreds()
	return true
}

// Creds returns every credential sorted by id.
func (r *Registry) Creds() []channels.Cred {
	r.mu.RLock()
	cs := make([]channels.Cred, 0, len(r.creds))
	for _, c := range r.creds {
		cs = append(cs, c)
	}
	r.mu.RUnlock()
	slices.SortFunc(cs, func(a, b channels.Cred) int { return strings.Compare(a.ID, b.ID) })
	return cs
}

// ---- sessions ----

// PutSession stores a session (Body is copied).
func (r *Registry) PutSession(s channels.Session) {
	s = CloneSession(s)
	r.mu.Lock()
	r.sessions[s.ID] = s
	r.mu.Unlock()
}

// DeleteSession removes a session and reports whether it existed.
func (r *Registry) DeleteSession(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.sessions[id]
	delete(r.sessions, id)
	return ok
}

// Session returns a session that has not expired at now. The returned Body
// must not be modified.
func (r *Registry) Session(id string, now time.Time) (channels.Session, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.sessions[id]
	if !ok || !s.Expires.After(now) {
		return channels.Session{}, false
	}
	return s, true
}

// SweepSessions removes the sessions expired at now and returns how many.
func (r *Registry) SweepSessions(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id, s := range r.sessions {
		if !s.Expires.After(now) {
			delete(r.sessions, id)
			n++
		}
	}
	return n
}

// SessionCount returns the number of stored sessions, expired or not.
func (r *Registry) SessionCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.sessions)
}

// ---- helpers ----

func cloneChannel(c channels.Channel) channels.Channel {
	c.Flags = slices.Clone(c.Flags)
	c.Retention = c.Retention.Clone()
	if c.RateLimit != nil {
		rl := *c.RateLimit
		c.RateLimit = &rl
	}
	return c
}

func CloneSession(s channels.Session) channels.Session {
	s.Body = slices.Clone(s.Body)
	return s
}
