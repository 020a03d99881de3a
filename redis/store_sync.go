package redis

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/registry"
)

// receive forwards change notifications to the sync loop and asks for a
// resync after the subscription was re-established (notifications may
// have been missed while disconnected).
func (s *Store) receive(ps *goredis.PubSub) {
	defer s.wg.Done()
	defer ps.Close()
	subscribed := false
	for {
		msg, err := ps.Receive(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			subscribed = false
			s.requestResync()
			select {
			case <-time.After(100 * time.Millisecond):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if subscribed {
				s.requestResync()
			}
			subscribed = true
		case *goredis.Message:
			keys := strings.Split(m.Payload, "\n")
			if len(keys) > 1 {
				select {
				case s.notes <- keys[1:]:
				case <-s.ctx.Done():
					return
				}
			}
		}
	}
}

func (s *Store) requestResync() {
	select {
	case s.resync <- struct{}{}:
	default:
	}
}

// syncLoop loads the copy, then applies notifications and resyncs.
func (s *Store) syncLoop() {
	defer s.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		err := s.load(true)
		if err == nil {
			break
		}
		s.log.Warn().Err(err).Msg("loading configuration from redis failed; retrying")
		select {
		case <-time.After(backoff):
		case <-s.ctx.Done():
			return
		}
		backoff = min(backoff*2, 2*time.Second)
	}
	s.ready.Store(true)
	close(s.readyCh)

	tick := time.NewTicker(s.cfg.ResyncInterval)
	defer tick.Stop()
	lastVersion, skipped := s.currentVersion(), 0
	for {
		select {
		case <-s.ctx.Done():
			return
		case keys := <-s.notes:
			// Coalesce what is queued into one read.
			for more := true; more && len(keys) < 1000; {
				select {
				case k := <-s.notes:
					keys = append(keys, k...)
				default:
					more = false
				}
			}
			if err := s.applyKeys(keys); err != nil {
				s.requestResync()
			}
		case <-s.resync:
			if err := s.load(false); err != nil {
				s.log.Warn().Err(err).Msg("configuration resync failed")
			}
			lastVersion, skipped = s.currentVersion(), 0
		case <-tick.C:
			v := s.currentVersion()
			if v == lastVersion && v != 0 && skipped < 5 {
				skipped++
				continue
			}
			if err := s.load(false); err != nil {
				s.log.Warn().Err(err).Msg("configuration resync failed")
				continue
			}
			lastVersion, skipped = v, 0
		}
	}
}

// currentVersion reads the change counter (0 on error).
func (s *Store) currentVersion() uint64 {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	v, err := s.client.Get(ctx, versionKey).Uint64()
	if err != nil {
		return 0
	}
	return v
}

// noteVersion tracks the highest version seen; a counter that went back
// means the configuration Redis was reset: forget what was applied.
// s.applyMu held.
func (s *Store) noteVersion(v uint64) {
	if v < s.maxVersion {
		clear(s.recent)
		s.requestResync()
	}
	s.maxVersion = v
}

// applyKeys re-reads notified keys (with the counter, in one MULTI) and
// applies them unless something newer was applied already.
func (s *Store) applyKeys(keys []string) error {
	slices.Sort(keys)
	keys = slices.Compact(keys)
	// Channels first: a removed channel record must not take the tokens
	// and drains read in the same batch with it.
	slices.SortStableFunc(keys, func(a, b string) int {
		ka, _ := parseKey(a)
		kb, _ := parseKey(b)
		return int(ka) - int(kb)
	})
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	var ver *goredis.StringCmd
	cmds := make([]*goredis.MapStringStringCmd, len(keys))
	_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		ver = p.Get(ctx, versionKey)
		for i, k := range keys {
			if kind, _ := parseKey(k); kind != kindOther {
				cmds[i] = p.HGetAll(ctx, k)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	v, _ := strconv.ParseUint(ver.Val(), 10, 64)
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.noteVersion(v)
	var toks []channels.Token
	var gone []string
	for i, k := range keys {
		if cmds[i] == nil {
			continue
		}
		h := cmds[i].Val()
		kind, id := parseKey(k)
		switch kind {
		case kindChannel:
			if len(h) == 0 {
				s.applyChannelGone(v, id)
			} else {
				s.applyChannel(v, channelFromHash(id, h))
			}
		case kindToken:
			if t, ok := tokenFromHash(id, h); ok {
				toks = append(toks, t)
			} else {
				gone = append(gone, id)
			}
		case kindDrain:
			if d, ok := drainFromHash(id, h); ok {
				s.applyDrain(v, d)
			} else if n, err := strconv.ParseInt(id, 10, 64); err == nil {
				s.applyDrainGone(v, n)
			}
		case kindCred:
			if c, ok := credFromHash(id, h); ok {
				s.applyCred(v, c)
			} else {
				s.applyCredGone(v, id)
			}
		}
	}
	s.applyTokensGone(v, gone)
	s.applyTokens(v, toks)
	return nil
}

// load reads every configuration record. The first load replaces the
// (empty) copy; later ones apply only the differences, skipping keys
// changed since the scan began (their notifications are newer).
func (s *Store) load(first bool) error {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Minute)
	defer cancel()
	start, err := s.client.Get(ctx, versionKey).Uint64()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	st, err := s.scan(ctx)
	if err != nil {
		return err
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.noteVersion(start)
	if first {
		s.reg.Replace(st)
		return nil
	}
	s.diff(st, start)
	for k, v := range s.recent {
		if v < start {
			delete(s.recent, k)
		}
	}
	return nil
}

// scan reads every record with SCAN and pipelined HGETALLs.
func (s *Store) scan(ctx context.Context) (registry.State, error) {
	var st registry.State
	var keys []string
	var cursor uint64
	for {
		ks, next, err := s.client.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			return st, err
		}
		for _, k := range ks {
			if kind, _ := parseKey(k); kind != kindOther {
				keys = append(keys, k)
			}
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for len(keys) > 0 {
		n := min(len(keys), 500)
		batch := keys[:n]
		keys = keys[n:]
		cmds := make([]*goredis.MapStringStringCmd, len(batch))
		_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.HGetAll(ctx, k)
			}
			return nil
		})
		if err != nil {
			return st, err
		}
		for i, k := range batch {
			h := cmds[i].Val()
			if len(h) == 0 {
				continue
			}
			kind, id := parseKey(k)
			switch kind {
			case kindChannel:
				st.Channels = append(st.Channels, channelFromHash(id, h))
			case kindToken:
				if t, ok := tokenFromHash(id, h); ok {
					st.Tokens = append(st.Tokens, t)
				}
			case kindDrain:
				if d, ok := drainFromHash(id, h); ok {
					st.Drains = append(st.Drains, d)
				}
			case kindCred:
				if c, ok := credFromHash(id, h); ok {
					st.Creds = append(st.Creds, c)
				}
			}
		}
	}
	var chIdx, drIdx *goredis.StringCmd
	var cur *goredis.MapStringStringCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		chIdx = p.Get(ctx, "channel_index")
		drIdx = p.Get(ctx, "drain_index")
		cur = p.HGetAll(ctx, cursorsKey)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return st, err
	}
	st.ChannelIndex, _ = strconv.ParseInt(chIdx.Val(), 10, 64)
	st.DrainIndex, _ = strconv.ParseInt(drIdx.Val(), 10, 64)
	st.Cursors = map[int64]channels.Cursor{}
	for k, v := range cur.Val() {
		id, err := strconv.ParseInt(k, 10, 64)
		if c, ok := parseCursor(v); err == nil && ok {
			st.Cursors[id] = c
		}
	}
	return st, nil
}

// diff applies the differences between the copy and st, except for keys
// changed at or after version start. s.applyMu held.
func (s *Store) diff(st registry.State, start uint64) {
	skip := func(key string) bool { v := s.recent[key]; return v > 0 && v >= start }
	cur := s.reg.State(time.Time{})

	newCh := make(map[string]channels.Channel, len(st.Channels))
	for _, c := range st.Channels {
		newCh[c.ID] = c
	}
	for _, c := range cur.Channels {
		if _, ok := newCh[c.ID]; !ok && !skip(channelKey(c.ID)) {
			s.removeChannelRecord(c.ID)
		}
	}
	oldCh := make(map[string]channels.Channel, len(cur.Channels))
	for _, c := range cur.Channels {
		oldCh[c.ID] = c
	}
	for id, c := range newCh {
		if o, ok := oldCh[id]; (!ok || o.Name != c.Name || !slices.Equal(o.Flags, c.Flags) || !o.Retention.Equal(c.Retention) || !sameRateLimit(o.RateLimit, c.RateLimit)) && !skip(channelKey(id)) {
			s.reg.PutChannel(c)
		}
	}

	newTok := make(map[string]channels.Token, len(st.Tokens))
	for _, t := range st.Tokens {
		newTok[t.ID] = t
	}
	var del []string
	for _, t := range cur.Tokens {
		if _, ok := newTok[t.ID]; !ok && !skip(tokenKey(t.ID)) {
			del = append(del, t.ID)
		}
	}
	s.reg.DeleteTokens(del...)
	oldTok := make(map[string]channels.Token, len(cur.Tokens))
	for _, t := range cur.Tokens {
		oldTok[t.ID] = t
	}
	var put []channels.Token
	for id, t := range newTok {
		if o, ok := oldTok[id]; (!ok || o != t) && !skip(tokenKey(id)) {
			put = append(put, t)
		}
	}
	s.reg.PutTokens(put...)

	newDr := make(map[int64]channels.Drain, len(st.Drains))
	for _, d := range st.Drains {
		newDr[d.ID] = d
	}
	for _, d := range cur.Drains {
		if _, ok := newDr[d.ID]; !ok && !skip(drainKey(strconv.FormatInt(d.ID, 10))) {
			s.reg.DeleteDrain(d.ID)
		}
	}
	oldDr := make(map[int64]channels.Drain, len(cur.Drains))
	for _, d := range cur.Drains {
		oldDr[d.ID] = d
	}
	for id, d := range newDr {
		if o, ok := oldDr[id]; (!ok || o != d) && !skip(drainKey(strconv.FormatInt(id, 10))) {
			s.reg.PutDrain(d)
		}
	}

	newCr := make(map[string]channels.Cred, len(st.Creds))
	for _, c := range st.Creds {
		newCr[c.ID] = c
	}
	for _, c := range cur.Creds {
		if _, ok := newCr[c.ID]; !ok && !skip(credKey(c.ID)) {
			s.reg.DeleteCred(c.ID)
		}
	}
	oldCr := make(map[string]channels.Cred, len(cur.Creds))
	for _, c := range cur.Creds {
		oldCr[c.ID] = c
	}
	for id, c := range newCr {
		if o, ok := oldCr[id]; (!ok || o != c) && !skip(credKey(id)) {
			s.reg.PutCred(c)
		}
	}

	s.reg.SetChannelIndex(st.ChannelIndex)
	s.reg.SetDrainIndex(st.DrainIndex)
	for _, id := range slices.Sorted(maps.Keys(st.Cursors)) {
		s.reg.SetDrainCursor(id, st.Cursors[id])
	}
}
