// Package stats counts a channel's messages per source (token name),
// process type and severity: received, and dropped by reason, since the
// node started and over the last minute.
//
// It is cheap enough to keep on for every channel: a channel's counters
// exist once it has received a message; counting is a few atomic adds in
// fixed arrays, the source and process type looked up in a copy-on-write
// table of small ids (no allocation per message; a new key allocates once).
// A channel tracks at most MaxKeys sources and MaxKeys process types; more
// are counted under Other.
//
// The last minute is a sliding-window estimate over two one-minute
// buckets (the current one, and the previous one weighted by the part of
// it still inside the window), as sliding-window rate limiters do: exact
// when the rate is steady, within one bucket's share otherwise.
package stats

import (
	"sync"
	"sync/atomic"
	"time"
)

// Reason is why a message was dropped.
type Reason uint8

// Drop reasons. To add one, add a constant before numReasons and its name
// in reasonNames.
const (
	// Filter: a drain's filter skipped the message (counted once per drain).
	Filter Reason = iota
	// RateLimit: the channel's rate limit refused the message at ingest.
	RateLimit
	numReasons
)

var reasonNames = [numReasons]string{"filter", "rate_limit"}

func (r Reason) String() string { return reasonNames[r] }

// MaxKeys bounds the sources and the process types tracked per channel.
const MaxKeys = 64

// Other is the key of what is past MaxKeys.
const Other = "(other)"

const bucket = int64(time.Minute)

// Registry holds the counters of every channel seen on this node.
type Registry struct {
	now     func() int64
	started time.Time
	mu      sync.RWMutex
	chans   map[string]*Channel
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{now: func() int64 { return time.Now().UnixNano() }, started: time.Now(), chans: map[string]*Channel{}}
}

// Channel returns the counters of channel id, creating them.
func (r *Registry) Channel(id string) *Channel {
	r.mu.RLock()
	c := r.chans[id]
	r.mu.RUnlock()
	if c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c = r.chans[id]; c == nil {
		c = &Channel{reg: r}
		c.sources.init()
		c.procs.init()
		r.chans[id] = c
	}
	return c
}

// Lookup returns the counters of channel id, if it has any.
func (r *Registry) Lookup(id string) (*Channel, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.chans[id]
	return c, ok
}

// Delete forgets channel id (a deleted channel).
func (r *Registry) Delete(id string) {
	r.mu.Lock()
	delete(r.chans, id)
	r.mu.Unlock()
}

// Started is when counting began.
func (r *Registry) Started() time.Time { return r.started }

// Channel holds one channel's counters. Safe for concurrent use.
type Channel struct {
	reg        *Registry
	total      counters
	severities [8]counters
	sources    keys
	procs      keys
}

// Received counts one message received from source (the token's name)
// with PROCID procid (its process type is what precedes the first '.') and
// severity 0-7 (anything else counts as 7).
func (c *Channel) Received(source string, procid []byte, severity int) {
	c.count(-1, source, procid, severity)
}

// Dropped counts one message dropped for reason; the keys are as for
// Received.
func (c *Channel) Dropped(reason Reason, source string, procid []byte, severity int) {
	c.count(int(reason), source, procid, severity)
}

// DroppedBytes is Dropped with a source given as bytes (a message's
// APP-NAME).
func (c *Channel) DroppedBytes(reason Reason, source, procid []byte, severity int) {
	c.countBytes(int(reason), source, procid, severity)
}

// ReceivedN counts n messages received from source with process type
// proctype (ProcessType of their PROCID) and severity: callers that tally
// locally add their tallies at once.
func (c *Channel) ReceivedN(source string, proctype []byte, severity int, n uint64) {
	c.countN(-1, source, proctype, severity, n)
}

// DroppedN is ReceivedN for messages dropped for reason.
func (c *Channel) DroppedN(reason Reason, source string, proctype []byte, severity int, n uint64) {
	c.countN(int(reason), source, proctype, severity, n)
}

func (c *Channel) count(reason int, source string, procid []byte, severity int) {
	c.countN(reason, source, processType(procid), severity, 1)
}

func (c *Channel) countN(reason int, source string, proctype []byte, severity int, n uint64) {
	now := c.reg.now()
	c.total.addN(reason, now, n)
	c.severities[sevIndex(severity)].addN(reason, now, n)
	c.sources.get(source).addN(reason, now, n)
	c.procs.getBytes(proctype).addN(reason, now, n)
}

func (c *Channel) countBytes(reason int, source, procid []byte, severity int) {
	now := c.reg.now()
	c.total.add(reason, now)
	c.severities[sevIndex(severity)].add(reason, now)
	c.sources.getBytes(source).add(reason, now)
	c.procs.getBytes(processType(procid)).add(reason, now)
}

func sevIndex(s int) int {
	if s < 0 || s > 7 {
		return 7
	}
	return s
}

// ProcessType is PROCID up to its first '.' ("web.1" → "web").
func ProcessType(procid []byte) []byte { return processType(procid) }

func processType(procid []byte) []byte {
	for i, c := range procid {
		if c == '.' {
			return procid[:i]
		}
	}
	return procid
}

// counters are the counts of one key: since start, and per one-minute
// bucket for the last minute (index 0: received, 1+reason: dropped).
type counters struct {
	total   [1 + numReasons]atomic.Uint64
	buckets [2]minuteBucket
}

type minuteBucket struct {
	start atomic.Int64 // the bucket's minute (Unix ns / 1 min)
	n     [1 + numReasons]atomic.Uint64
}

func (k *counters) add(reason int, now int64) { k.addN(reason, now, 1) }

func (k *counters) addN(reason int, now int64, n uint64) {
	i := reason + 1
	k.total[i].Add(n)
	m := now / bucket
	b := &k.buckets[m&1]
	if s := b.start.Load(); s != m {
		// A new minute: the first counter in it resets the bucket. A count
		// racing with the reset may be lost from the window (not from the
		// totals).
		if b.start.CompareAndSwap(s, m) {
			for j := range b.n {
				b.n[j].Store(0)
			}
		}
	}
	b.n[i].Add(n)
}

// Counts are the counts of one key.
type Counts struct {
	Received uint64            `json:"received"`
	Dropped  map[string]uint64 `json:"dropped"`
}

// Snapshot is one key's counts since start and over the last minute.
type Snapshot struct {
	Total      Counts `json:"total"`
	LastMinute Counts `json:"last_minute"`
}

func (k *counters) snapshot(now int64) Snapshot {
	var s Snapshot
	var tot, last [1 + numReasons]uint64
	m := now / bucket
	frac := float64(bucket-now%bucket) / float64(bucket) // share of the previous minute still in the window
	for i := range tot {
		tot[i] = k.total[i].Load()
		if b := &k.buckets[m&1]; b.start.Load() == m {
			last[i] += b.n[i].Load()
		}
		if b := &k.buckets[(m-1)&1]; b.start.Load() == m-1 {
			last[i] += uint64(float64(b.n[i].Load())*frac + 0.5)
		}
	}
	s.Total = counts(tot)
	s.LastMinute = counts(last)
	return s
}

func counts(v [1 + numReasons]uint64) Counts {
	c := Counts{Received: v[0], Dropped: make(map[string]uint64, numReasons)}
	for r := Reason(0); r < numReasons; r++ {
		c.Dropped[r.String()] = v[1+r]
	}
	return c
}

// ChannelSnapshot is a channel's counts, whole and per key.
type ChannelSnapshot struct {
	Snapshot
	Sources      map[string]Snapshot `json:"sources"`
	ProcessTypes map[string]Snapshot `json:"process_types"`
	Severities   map[string]Snapshot `json:"severities"` // "0" (emerg) to "7" (debug)
}

// Snapshot returns the channel's counts now.
func (c *Channel) Snapshot() ChannelSnapshot {
	now := c.reg.now()
	s := ChannelSnapshot{
		Snapshot:     c.total.snapshot(now),
		Sources:      c.sources.snapshot(now),
		ProcessTypes: c.procs.snapshot(now),
		Severities:   map[string]Snapshot{},
	}
	for i := range c.severities {
		if c.severities[i].total[0].Load() == 0 && !c.severities[i].anyDropped() {
			continue
		}
		s.Severities[string(rune('0'+i))] = c.severities[i].snapshot(now)
	}
	return s
}

func (k *counters) anyDropped() bool {
	for i := 1; i < len(k.total); i++ {
		if k.total[i].Load() > 0 {
			return true
		}
	}
	return false
}

// EmptySnapshot is the snapshot of a channel that has counted nothing.
func EmptySnapshot() ChannelSnapshot {
	var k counters
	return ChannelSnapshot{Snapshot: k.snapshot(0), Sources: map[string]Snapshot{},
		ProcessTypes: map[string]Snapshot{}, Severities: map[string]Snapshot{}}
}

// keys interns up to MaxKeys names into counters: the table is read
// without a lock and copied when a name is added.
type keys struct {
	table atomic.Pointer[keyTable]
	mu    sync.Mutex
	other counters
}

type keyTable struct {
	ids  map[string]int
	list []*counters
	name []string
}

func (k *keys) init() { k.table.Store(&keyTable{ids: map[string]int{}}) }

func (k *keys) get(name string) *counters {
	t := k.table.Load()
	if i, ok := t.ids[name]; ok {
		return t.list[i]
	}
	return k.add(name)
}

func (k *keys) getBytes(name []byte) *counters {
	t := k.table.Load()
	if i, ok := t.ids[string(name)]; ok { // no allocation: a map index by string(bytes)
		return t.list[i]
	}
	return k.add(string(name))
}

func (k *keys) add(name string) *counters {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.table.Load()
	if i, ok := t.ids[name]; ok {
		return t.list[i]
	}
	if len(t.list) >= MaxKeys {
		return &k.other
	}
	nt := &keyTable{ids: make(map[string]int, len(t.ids)+1), list: append(t.list[:len(t.list):len(t.list)], new(counters)),
		name: append(t.name[:len(t.name):len(t.name)], name)}
	for n, i := range t.ids {
		nt.ids[n] = i
	}
	nt.ids[name] = len(nt.list) - 1
	k.table.Store(nt)
	return nt.list[len(nt.list)-1]
}

func (k *keys) snapshot(now int64) map[string]Snapshot {
	t := k.table.Load()
	out := make(map[string]Snapshot, len(t.list)+1)
	for i, c := range t.list {
		out[t.name[i]] = c.snapshot(now)
	}
	if k.other.total[0].Load() > 0 || k.other.anyDropped() {
		out[Other] = k.other.snapshot(now)
	}
	return out
}
