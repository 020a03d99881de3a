package redis

import (
	"sort"
	"sync"
)

// entryCache keeps recently read stream entries of one shard, so readers
// that read the same entries (a drain reading a big entry in small pieces,
// several tails of one channel) fetch each entry from Redis once. Entries
// never change once written; they are keyed by channel, epoch and ID, and
// evicted oldest first beyond a byte bound.
type entryCache struct {
	mu    sync.Mutex
	limit int64
	bytes int64
	chans map[string]*chanEntries
	fifo  []*cachedEntry // insertion order
	head  int
}

type chanEntries struct {
	epoch string
	list  []*cachedEntry // sorted by last
}

type cachedEntry struct {
	ch          string
	first, last uint64
	d           string
	dead        bool
}

func newEntryCache(limit int64) *entryCache {
	return &entryCache{limit: limit, chans: map[string]*chanEntries{}}
}

// find returns the cached entry of ch in epoch that contains offset off.
func (c *entryCache) find(ch, epoch string, off uint64) (first, last uint64, d string, ok bool) {
	if c.limit <= 0 {
		return 0, 0, "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ce := c.chans[ch]
	if ce == nil || (epoch != "" && ce.epoch != epoch) {
		return 0, 0, "", false
	}
	i := sort.Search(len(ce.list), func(i int) bool { return ce.list[i].last >= off })
	if i == len(ce.list) || ce.list[i].first > off {
		return 0, 0, "", false
	}
	e := ce.list[i]
	return e.first, e.last, e.d, true
}

// add caches an entry of ch in epoch.
func (c *entryCache) add(ch, epoch string, first, last uint64, d string) {
	if c.limit <= 0 || int64(len(d)) > c.limit/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ce := c.chans[ch]
	if ce == nil {
		ce = &chanEntries{epoch: epoch}
		c.chans[ch] = ce
	} else if ce.epoch != epoch {
		c.dropLocked(ce)
		ce.epoch = epoch
	}
	i := sort.Search(len(ce.list), func(i int) bool { return ce.list[i].last >= last })
	if i < len(ce.list) && ce.list[i].last == last {
		return
	}
	e := &cachedEntry{ch: ch, first: first, last: last, d: d}
	ce.list = append(ce.list, nil)
	copy(ce.list[i+1:], ce.list[i:])
	ce.list[i] = e
	c.fifo = append(c.fifo, e)
	c.bytes += int64(len(d))
	for c.bytes > c.limit && c.head < len(c.fifo) {
		old := c.fifo[c.head]
		c.fifo[c.head] = nil
		c.head++
		if old.dead {
			continue
		}
		old.dead = true
		c.bytes -= int64(len(old.d))
		if oc := c.chans[old.ch]; oc != nil {
			for j, x := range oc.list {
				if x == old {
					oc.list = append(oc.list[:j], oc.list[j+1:]...)
					break
				}
			}
			if len(oc.list) == 0 {
				delete(c.chans, old.ch)
			}
		}
	}
	if c.head > len(c.fifo)/2 && c.head > 64 {
		n := copy(c.fifo, c.fifo[c.head:])
		clear(c.fifo[n:])
		c.fifo = c.fifo[:n]
		c.head = 0
	}
}

// drop forgets a channel's entries.
func (c *entryCache) drop(ch string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ce := c.chans[ch]; ce != nil {
		c.dropLocked(ce)
		delete(c.chans, ch)
	}
}

func (c *entryCache) dropLocked(ce *chanEntries) {
	for _, e := range ce.list {
		e.dead = true
		c.bytes -= int64(len(e.d))
	}
	ce.list = nil
}
