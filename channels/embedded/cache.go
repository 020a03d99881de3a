package embedded

import (
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// cache keeps the newest part of the write-ahead log in memory: slabs,
// oldest first, each a copy of a contiguous range of log positions. Appends
// encode their records straight into the newest slab and write them to the
// segment file from there, so the cache costs no extra copy; readers that
// keep up read records from it without touching the disk. When the slabs
// hold more than the limit the oldest is dropped (recycled): records in it
// are then read from their segment files. Memory is bounded by the limit
// whatever the retention.
type cache struct {
	slabSize int
	limit    int64

	// mu guards the list of slabs and their recycling. The appender (who
	// holds the log's write lock) fills the newest slab without it: the
	// bytes it writes are not yet published to readers.
	mu    sync.RWMutex
	slabs []*slab
	held  int64 // capacity of the slabs in the list
	free  []*slab
}

// slab is a copy of log positions [start, start+used). buf never changes
// after the slab is made, so readers may slice it under the read lock. Its
// memory is mapped outside the Go heap (newSlabBuf): the garbage collector
// neither scans it nor lets the heap grow twice its size, so the cache
// costs its limit in RSS and no more.
type slab struct {
	start int64
	used  int // written by the appender only
	buf   []byte
}

func newCache(limit int64, slabSize int) *cache {
	if limit < 2*int64(slabSize) {
		limit = 2 * int64(slabSize)
	}
	return &cache{slabSize: slabSize, limit: limit}
}

// reserve returns n bytes for the record at log position pos, which
// continues the log (the caller holds the write lock). keepFrom is the
// oldest position not yet written to the segment file: slabs holding such
// bytes are never dropped.
func (c *cache) reserve(pos int64, n int, keepFrom int64) []byte {
	if k := len(c.slabs); k > 0 {
		s := c.slabs[k-1]
		if s.start+int64(s.used) == pos && s.used+n <= len(s.buf) {
			b := s.buf[s.used : s.used+n : s.used+n]
			s.used += n
			return b
		}
	}
	var s *slab
	if n <= c.slabSize {
		if k := len(c.free); k > 0 {
			s = c.free[k-1]
			c.free = c.free[:k-1]
		} else {
			s = &slab{buf: newSlabBuf(c.slabSize)}
		}
	} else {
		s = &slab{buf: newSlabBuf(n)} // oversize: not recycled
	}
	s.start, s.used = pos, n
	c.mu.Lock()
	c.slabs = append(c.slabs, s)
	c.held += int64(len(s.buf))
	c.evictLocked(keepFrom)
	c.mu.Unlock()
	return s.buf[:n:n]
}

// evictLocked drops the oldest slabs while over the limit, keeping the
// newest one and any holding unwritten bytes.
func (c *cache) evictLocked(keepFrom int64) {
	drop := 0
	for drop < len(c.slabs)-1 && c.held > c.limit {
		s := c.slabs[drop]
		if s.start+int64(s.used) > keepFrom {
			break
		}
		c.held -= int64(len(s.buf))
		c.recycle(s)
		drop++
	}
	if drop > 0 {
		n := copy(c.slabs, c.slabs[drop:])
		clear(c.slabs[n:])
		c.slabs = c.slabs[:n]
	}
}

func (c *cache) recycle(s *slab) {
	if len(s.buf) == c.slabSize && len(c.free) < 4 {
		s.used = 0
		c.free = append(c.free, s)
		return
	}
	freeSlabBuf(s.buf)
	s.buf = nil
}

// close releases every slab (no reader may use the cache any more).
func (c *cache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.slabs {
		freeSlabBuf(s.buf)
	}
	for _, s := range c.free {
		freeSlabBuf(s.buf)
	}
	c.slabs, c.free, c.held = nil, nil, 0
}

// newSlabBuf maps n bytes of anonymous memory (falling back to the heap
// where mapping fails).
func newSlabBuf(n int) []byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n)
	}
	return b
}

func freeSlabBuf(b []byte) {
	if b != nil {
		_ = unix.Munmap(b) // fails harmlessly for a heap fallback
	}
}

// truncate forgets positions from pos on (a failed write is rolled back).
func (c *cache) truncate(pos int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := len(c.slabs) - 1; k >= 0; k-- {
		s := c.slabs[k]
		if s.start < pos {
			if end := s.start + int64(s.used); end > pos {
				s.used = int(pos - s.start)
			}
			return
		}
		c.held -= int64(len(s.buf))
		c.recycle(s)
		c.slabs[k] = nil
		c.slabs = c.slabs[:k]
	}
}

// pieces calls fn with the cached bytes of positions [from, to), slab by
// slab (the caller holds the write lock, so the range is stable).
func (c *cache) pieces(from, to int64, fn func([]byte) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i := sort.Search(len(c.slabs), func(i int) bool { return c.slabs[i].start+int64(c.slabs[i].used) > from })
	for ; i < len(c.slabs) && from < to; i++ {
		s := c.slabs[i]
		lo := from - s.start
		hi := min(to, s.start+int64(s.used)) - s.start
		if lo < 0 || hi <= lo {
			continue
		}
		if err := fn(s.buf[lo:hi]); err != nil {
			return err
		}
		from = s.start + hi
	}
	return nil
}

// read calls fn with the record at pos of size n if it is cached, and
// reports whether it was. fn must not keep the slice.
func (c *cache) read(pos int64, n int, fn func([]byte)) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i := sort.Search(len(c.slabs), func(i int) bool { return c.slabs[i].start > pos }) - 1
	if i < 0 {
		return false
	}
	s := c.slabs[i]
	lo := pos - s.start
	// Only published records are read, and those are complete: compare
	// with the slab's size rather than its fill (the appender's field).
	if lo+int64(n) > int64(len(s.buf)) {
		return false
	}
	fn(s.buf[lo : lo+int64(n)])
	return true
}

// bytes returns the memory the cache holds.
func (c *cache) bytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.held
}
