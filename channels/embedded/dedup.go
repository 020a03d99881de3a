package embedded

import (
	"crypto/sha256"
	"encoding/hex"
)

// Idempotency keys (channels.Batch.Key). A batch record carries the
// 16-byte SHA-256 prefix of its key, so the keys a channel stored survive
// a restart with the records; the channel checkpoint carries the keys of
// records whose segment files are deleted. Each channel remembers its keys
// for DedupWindow, at most DedupMaxKeys of them (the oldest go first).
// Everything here is guarded by the write lock (wmu): the check and the
// append are one step.

// DefaultDedupMaxKeys bounds the keys one channel remembers (about 100
// bytes of memory each).
const DefaultDedupMaxKeys = 100_000

type keyDigest = [keySize]byte

func digestKey(key string) keyDigest {
	sum := sha256.Sum256([]byte(key))
	return keyDigest(sum[:keySize])
}

// keySeen says where and when a key was stored.
type keySeen struct {
	end  int64 // log position after the record (durable once synced past it)
	time int64 // ingest time of the record, Unix ns
}

type keyRef struct {
	k    keyDigest
	time int64
}

// dedup is one channel's window of keys.
type dedup struct {
	seen map[keyDigest]keySeen
	q    []keyRef // in storing order
	head int
}

// lookupKey reports whether c stored k within the window, and the log
// position after that record (wmu held).
func (l *Log) lookupKey(c *chanLog, k keyDigest) (int64, bool) {
	if c.keys == nil {
		return 0, false
	}
	s, ok := c.keys.seen[k]
	if !ok || s.time < l.now().Add(-l.cfg.DedupWindow).UnixNano() {
		return 0, false
	}
	return s.end, true
}

// rememberKey adds k to c's window and forgets what fell out of it (wmu
// held).
func (l *Log) rememberKey(c *chanLog, k keyDigest, end, t int64) {
	d := c.keys
	if d == nil {
		d = &dedup{seen: make(map[keyDigest]keySeen)}
		c.keys = d
	}
	d.seen[k] = keySeen{end: end, time: t}
	d.q = append(d.q, keyRef{k: k, time: t})
	l.expireKeys(c)
}

// expireKeys forgets c's keys older than the window or beyond the bound
// (wmu held).
func (l *Log) expireKeys(c *chanLog) {
	d := c.keys
	if d == nil {
		return
	}
	cutoff := l.now().Add(-l.cfg.DedupWindow).UnixNano()
	for d.head < len(d.q) && (d.q[d.head].time < cutoff || len(d.q)-d.head > l.cfg.DedupMaxKeys) {
		r := d.q[d.head]
		if s, ok := d.seen[r.k]; ok && s.time == r.time {
			delete(d.seen, r.k)
		}
		d.head++
	}
	if d.head == len(d.q) {
		c.keys = nil
		return
	}
	if d.head >= 1024 && d.head*2 >= len(d.q) {
		n := copy(d.q, d.q[d.head:])
		d.q = d.q[:n]
		d.head = 0
	}
}

// keyState is a remembered key in the channel checkpoint.
type keyState struct {
	K string `json:"k"` // hex digest
	T int64  `json:"t"`
}

// keyStates lists c's window for the checkpoint (wmu held).
func (c *chanLog) keyStates() []keyState {
	if c.keys == nil {
		return nil
	}
	out := make([]keyState, 0, len(c.keys.q)-c.keys.head)
	for _, r := range c.keys.q[c.keys.head:] {
		if s, ok := c.keys.seen[r.k]; ok && s.time == r.time {
			out = append(out, keyState{K: hex.EncodeToString(r.k[:]), T: r.time})
		}
	}
	return out
}

// restoreKeys loads a checkpoint's keys into c (at recovery).
func (l *Log) restoreKeys(c *chanLog, ks []keyState) {
	for _, s := range ks {
		var k keyDigest
		if b, err := hex.DecodeString(s.K); err == nil && len(b) == keySize {
			copy(k[:], b)
			l.rememberKey(c, k, 0, s.T)
		}
	}
}
