package drains

import (
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

func cur(epoch string, off uint64) channels.Cursor {
	return channels.Cursor{Epoch: epoch, Offset: off}
}

func intentCur(epoch string, off, pending uint64) channels.Cursor {
	return channels.Cursor{Epoch: epoch, Offset: off, Pending: pending}
}

var posFormat = &format{http: true, token: goldenToken, target: DefaultBatchBytes}

// posRead is a Log.Read result: records with the given offsets (ingested
// at their offset in seconds), then unparseable ones at the offsets in bad,
// ending at next; missed and reset as a log reports them.
type posRead struct {
	offsets []uint64
	next    channels.Cursor
	missed  uint64
	reset   bool
	bad     []uint64
}

func (r posRead) result() (*channels.Records, channels.ReadResult) {
	var recs channels.Records
	for _, o := range r.offsets {
		recs.Add(o, time.Unix(int64(o), 0).UnixNano(), rawMessage(int(o)))
	}
	for _, o := range r.bad {
		recs.Add(o, time.Unix(int64(o), 0).UnixNano(), []byte("not syslog"))
	}
	res := channels.ReadResult{Epoch: r.next.Epoch, Next: r.next, Missed: r.missed, Reset: r.reset}
	if r.missed > 0 {
		res.MissedSince = time.Unix(1, 0)
	}
	return &recs, res
}

// posSim drives a position the way the worker does, against a store that
// holds one cursor.
type posSim struct {
	t     *testing.T
	p     position
	b     batch
	store channels.Cursor // what the store holds
	now   time.Time
}

const posEvery = time.Second

func newPosSim(t *testing.T, stored channels.Cursor) *posSim {
	s := &posSim{t: t, store: stored, now: goldenNow}
	s.p.load(stored, s.now)
	return s
}

// read reads r from the position's next(), as the worker does: an empty
// read moves the position, otherwise a batch is built and its intent
// stored. It reports whether a batch is in flight.
func (s *posSim) read(r posRead) bool {
	s.t.Helper()
	from, exactly := s.p.next()
	recs, res := r.result()
	if exactly > 0 && uint64(recs.Len()) > exactly {
		s.t.Fatalf("read %d records from %+v, position asks for exactly %d", recs.Len(), from, exactly)
	}
	if recs.Len() == 0 && res.Missed == 0 {
		if s.p.skip(res) {
			s.tick(0)
		}
		return false
	}
	lost, since := s.p.loss()
	s.p.built()
	s.b.build(posFormat, from, recs, res, lost, since, s.now)
	if !s.b.send() {
		s.done(outOK)
		return false
	}
	if c, ok := s.p.intent(&s.b); ok {
		s.store = c
		s.p.intended(c, s.now)
	}
	return true
}

// done ends the batch in flight with o.
func (s *posSim) done(o outcome) {
	s.p.done(&s.b, o, s.now)
	s.tick(0)
}

// tick lets d pass and stores the position if it is due.
func (s *posSim) tick(d time.Duration) {
	s.now = s.now.Add(d)
	if c, ok := s.p.due(s.now, posEvery); ok {
		s.store = c
		s.p.wrote(c, s.now)
	}
}

// stop stores what a stopping worker stores.
func (s *posSim) stop() {
	if c, ok := s.p.final(); ok {
		s.store = c
		s.p.wrote(c, s.now)
	}
}

// want checks the position's next read and the stored cursor.
func (s *posSim) want(from channels.Cursor, exactly uint64, store channels.Cursor) {
	s.t.Helper()
	if f, n := s.p.next(); f != from || n != exactly {
		s.t.Errorf("next() = %+v, %d; want %+v, %d", f, n, from, exactly)
	}
	if s.store != store {
		s.t.Errorf("stored %+v, want %+v", s.store, store)
	}
}

func TestPositionStart(t *testing.T) {
	tests := []struct {
		name    string
		stored  channels.Cursor // zero: a new drain on a log described by info
		info    channels.LogInfo
		from    channels.Cursor
		exactly uint64
	}{
		{"stored cursor", cur("e", 42), channels.LogInfo{}, cur("e", 42), 0},
		{"stored intent: its batch first", intentCur("e", 42, 7), channels.LogInfo{}, cur("e", 42), 7},
		{"new drain: the log's next offset", channels.Cursor{}, channels.LogInfo{Epoch: "e", First: 3, Next: 20}, cur("e", 20), 0},
		{"new drain, no log yet: epoch-less", channels.Cursor{}, channels.LogInfo{First: 1, Next: 1}, cur("", 1), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p position
			if p.loaded() {
				t.Fatal("zero position is loaded")
			}
			if _, ok := p.final(); ok {
				t.Error("final() of an unloaded position has something to store")
			}
			c := tc.stored
			if c.Offset == 0 {
				c = initialCursor(tc.info)
			}
			p.load(c, goldenNow)
			if from, n := p.next(); !p.loaded() || from != tc.from || n != tc.exactly {
				t.Errorf("load(%+v): next() = %+v, %d (loaded %v); want %+v, %d", c, from, n, p.loaded(), tc.from, tc.exactly)
			}
			if !p.holds() {
				t.Errorf("load(%+v): the stored cursor does not hold the position", c)
			}
		})
	}
}

func TestPositionIntent(t *testing.T) {
	tests := []struct {
		name  string
		acked channels.Cursor
		read  posRead
		want  channels.Cursor
		ok    bool
	}{
		{"next batch", cur("e", 10), posRead{offsets: []uint64{10, 11, 12}, next: cur("e", 13)},
			intentCur("e", 10, 3), true},
		{"missed messages: the intent spans them", cur("e", 10), posRead{offsets: []uint64{15, 16}, next: cur("e", 17), missed: 5},
			intentCur("e", 10, 7), true},
		{"missed messages only", cur("e", 10), posRead{next: cur("e", 15), missed: 5},
			intentCur("e", 10, 5), true},
		{"epoch change: the new history's first record", cur("e1", 50), posRead{offsets: []uint64{1, 2, 3}, next: cur("e2", 4), reset: true},
			intentCur("e2", 1, 3), true},
		{"epoch change, oldest gone: its first retained record", cur("e1", 50), posRead{offsets: []uint64{8, 9}, next: cur("e2", 10), reset: true},
			intentCur("e2", 8, 2), true},
		{"epoch-less start position: the batch's epoch", cur("", 1), posRead{offsets: []uint64{1, 2}, next: cur("e2", 3)},
			intentCur("e2", 1, 2), true},
		{"epoch-less position beyond the end: the first record", cur("", 9), posRead{offsets: []uint64{1, 2}, next: cur("e", 3), reset: true},
			intentCur("e", 1, 2), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p position
			p.load(tc.acked, goldenNow)
			recs, res := tc.read.result()
			var b batch
			b.build(posFormat, tc.acked, recs, res, 0, time.Time{}, goldenNow)
			c, ok := p.intent(&b)
			if c != tc.want || ok != tc.ok {
				t.Fatalf("intent() from %+v = %+v, %v; want %+v, %v", tc.acked, c, ok, tc.want, tc.ok)
			}
			later := goldenNow.Add(time.Millisecond)
			p.intended(c, later)
			if from, _ := p.next(); from != cur(c.Epoch, c.Offset) || !p.holds() || p.stored != c || p.storedAt != later {
				t.Errorf("intended(%+v): next() = %+v, holds %v, stored %+v at %v; want the batch's start, held by the intent",
					c, from, p.holds(), p.stored, p.storedAt)
			}
			if _, ok := p.final(); ok {
				t.Errorf("intended(%+v): a stop would overwrite the intent", c)
			}
		})
	}
}

// TestPositionAck: a finished batch moves the position past it, and the
// messages given up are counted for the next L10 line.
func TestPositionAck(t *testing.T) {
	since := time.Unix(7, 0)
	tests := []struct {
		name       string
		unreported uint64 // before the batch
		read       posRead
		outcome    outcome
		acked      channels.Cursor
		lost       uint64 // after
		lostSince  time.Time
	}{
		{"acknowledged", 0, posRead{offsets: []uint64{10, 11}, next: cur("e", 12)}, outOK,
			cur("e", 12), 0, time.Time{}},
		{"acknowledged with an L10 line: the loss is reported", 4, posRead{offsets: []uint64{10}, next: cur("e", 11)}, outOK,
			cur("e", 11), 0, time.Time{}},
		{"acknowledged missed messages only", 0, posRead{next: cur("e", 15), missed: 5}, outOK,
			cur("e", 15), 0, time.Time{}},
		{"rejected: its messages are lost", 0, posRead{offsets: []uint64{10, 11, 12}, next: cur("e", 13)}, outRejected,
			cur("e", 13), 3, goldenNow},
		{"rejected after a loss: both, since the first", 4, posRead{offsets: []uint64{10, 11}, next: cur("e", 12)}, outRejected,
			cur("e", 12), 6, since},
		{"rejected with missed messages: both", 0, posRead{offsets: []uint64{15, 16}, next: cur("e", 17), missed: 5}, outRejected,
			cur("e", 17), 7, time.Unix(1, 0)},
		{"only unparseable records: the loss waits", 4, posRead{bad: []uint64{10, 11}, next: cur("e", 12)}, outOK,
			cur("e", 12), 4, since},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p position
			p.load(cur("e", 10), goldenNow)
			p.unreported = tc.unreported
			if tc.unreported > 0 {
				p.unreportedSince = since
			}
			recs, res := tc.read.result()
			lost, lostSince := p.loss()
			var b batch
			b.build(posFormat, cur("e", 10), recs, res, lost, lostSince, goldenNow)
			p.done(&b, tc.outcome, goldenNow)
			if from, _ := p.next(); from != tc.acked {
				t.Errorf("done(%v): next() = %+v, want %+v", tc.outcome, from, tc.acked)
			}
			if n, s := p.loss(); n != tc.lost || !s.Equal(tc.lostSince) {
				t.Errorf("done(%v): loss() = %d since %v, want %d since %v", tc.outcome, n, s, tc.lost, tc.lostSince)
			}
		})
	}
}

// TestPositionStored: what is stored, and when, against what is in memory.
func TestPositionStored(t *testing.T) {
	tests := []struct {
		name    string
		acked   channels.Cursor // in memory
		stored  channels.Cursor
		age     time.Duration // since stored
		due     bool
		final   bool // a stop stores acked
		holdsIt bool
	}{
		{"stored", cur("e", 10), cur("e", 10), time.Hour, false, false, true},
		{"intent in flight from it", cur("e", 10), intentCur("e", 10, 5), time.Hour, false, false, true},
		{"acknowledged, not yet due", cur("e", 15), intentCur("e", 10, 5), posEvery / 2, false, true, false},
		{"acknowledged and due", cur("e", 15), intentCur("e", 10, 5), posEvery, true, true, false},
		{"other epoch, same offset", cur("e2", 10), cur("e1", 10), posEvery, true, true, false},
		{"epoch-less position, stored with an epoch", cur("", 1), intentCur("e1", 1, 10), posEvery, true, true, false},
		{"position with an epoch, stored epoch-less", cur("e2", 1), cur("", 1), posEvery, true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := position{acked: tc.acked, stored: tc.stored, storedAt: goldenNow}
			now := goldenNow.Add(tc.age)
			if p.holds() != tc.holdsIt {
				t.Errorf("holds() = %v, want %v", p.holds(), tc.holdsIt)
			}
			if c, ok := p.due(now, posEvery); ok != tc.due || (ok && c != tc.acked) {
				t.Errorf("due() = %+v, %v; want %v", c, ok, tc.due)
			}
			if !tc.holdsIt && (p.dueIn(now, posEvery) <= 0) != tc.due {
				t.Errorf("dueIn() = %v, due %v", p.dueIn(now, posEvery), tc.due)
			}
			if c, ok := p.final(); ok != tc.final || (ok && c != tc.acked) {
				t.Errorf("final() = %+v, %v; want %v", c, ok, tc.final)
			}
			if c, ok := p.final(); ok {
				p.wrote(c, now)
				if !p.holds() || p.stored != tc.acked {
					t.Errorf("wrote(%+v): stored %+v, holds %v", c, p.stored, p.holds())
				}
			}
		})
	}
}

// TestPositionResend: a worker that starts from a stored intent re-sends
// exactly that batch, under the same Logplex-Frame-Id.
func TestPositionResend(t *testing.T) {
	tests := []struct {
		name  string
		first posRead // the batch in flight when the first worker stops
		again posRead // what the log holds for the second worker
		same  bool    // the same batch (Frame-Id) is re-sent
		from  channels.Cursor
		store channels.Cursor // after the second worker's batch was sent
	}{
		{"takeover: the same batch, not the newer messages",
			posRead{offsets: []uint64{10, 11, 12}, next: cur("e", 13)},
			posRead{offsets: []uint64{10, 11, 12}, next: cur("e", 13)},
			true, cur("e", 10), intentCur("e", 10, 3)},
		{"takeover after a loss to retention: the same L10 line and records",
			posRead{offsets: []uint64{15, 16}, next: cur("e", 17), missed: 5},
			posRead{offsets: []uint64{15, 16}, next: cur("e", 17), missed: 5},
			true, cur("e", 10), intentCur("e", 10, 7)},
		{"takeover after the history restarted: the new history",
			posRead{offsets: []uint64{10, 11, 12}, next: cur("e", 13)},
			posRead{offsets: []uint64{1, 2}, next: cur("e2", 3), reset: true},
			false, cur("e", 10), intentCur("e2", 1, 2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newPosSim(t, cur("e", 10))
			if !a.read(tc.first) {
				t.Fatal("no batch in flight")
			}
			id := a.b.frameID
			a.stop() // abandons the batch: the intent stays stored
			if a.store.Pending == 0 {
				t.Fatalf("stored %+v after an abandoned batch, want its intent", a.store)
			}

			b := newPosSim(t, a.store)
			b.want(tc.from, a.store.Pending, a.store)
			if !b.read(tc.again) {
				t.Fatal("no batch re-sent")
			}
			if (b.b.frameID == id) != tc.same {
				t.Errorf("re-sent Frame-Id %s, first %s; same %v", b.b.frameID, id, tc.same)
			}
			if _, n := b.p.next(); n != 0 {
				t.Errorf("re-send still pending after the batch was built: %d", n)
			}
			b.want(cur(tc.store.Epoch, tc.store.Offset), 0, tc.store)
		})
	}
}

// TestPositionEpochChange: the channel's history restarts (ReadResult.Reset).
func TestPositionEpochChange(t *testing.T) {
	t.Run("new history with messages", func(t *testing.T) {
		s := newPosSim(t, cur("e1", 50))
		s.read(posRead{offsets: []uint64{1, 2, 3}, next: cur("e2", 4), reset: true})
		s.want(cur("e2", 1), 0, intentCur("e2", 1, 3))
		s.done(outOK)
		s.tick(posEvery)
		s.want(cur("e2", 4), 0, cur("e2", 4))
	})
	t.Run("new empty history", func(t *testing.T) {
		s := newPosSim(t, cur("e1", 50))
		s.read(posRead{next: cur("e2", 1), reset: true})
		s.tick(posEvery)
		s.want(cur("e2", 1), 0, cur("e2", 1))
	})
	t.Run("in flight when the history restarted: the batch is gone", func(t *testing.T) {
		s := newPosSim(t, intentCur("e1", 10, 3))
		s.read(posRead{offsets: []uint64{7, 8}, next: cur("e2", 9), reset: true})
		s.want(cur("e2", 7), 0, intentCur("e2", 7, 2))
	})
	// The bug fixed by "drains: fix a worker stuck after its channel's
	// history restarted into an empty log": a log without the channel
	// answers with an epoch-less position, which must be stored (the
	// stored cursor of the old epoch does not hold it), and which takes
	// the epoch of its first batch.
	t.Run("restarted into an empty log: epoch-less start position", func(t *testing.T) {
		s := newPosSim(t, intentCur("e1", 1, 10))
		s.want(cur("e1", 1), 10, intentCur("e1", 1, 10))
		if s.read(posRead{next: cur("", 1), reset: true}) {
			t.Fatal("a batch from an empty log")
		}
		s.want(cur("", 1), 0, intentCur("e1", 1, 10)) // the batch in flight is gone; not due yet
		if s.p.holds() {
			t.Fatal("the old epoch's stored cursor holds the epoch-less position")
		}
		s.tick(posEvery)
		s.want(cur("", 1), 0, cur("", 1))
		if s.read(posRead{next: cur("", 1)}) {
			t.Fatal("a batch from an empty log")
		}
		// Messages arrive in the new epoch.
		if !s.read(posRead{offsets: []uint64{1, 2, 3}, next: cur("e2", 4)}) {
			t.Fatal("no batch")
		}
		s.want(cur("e2", 1), 0, intentCur("e2", 1, 3))
		// A stop abandons the batch: the intent must stay stored.
		s.stop()
		s.want(cur("e2", 1), 0, intentCur("e2", 1, 3))
		// Or it is acknowledged: the next position is stored when due.
		s.done(outOK)
		s.tick(posEvery)
		s.want(cur("e2", 4), 0, cur("e2", 4))
	})
}

// TestPositionMissed: messages that left retention before they were read
// are reported once, with the exact count, in the next L10 line.
func TestPositionMissed(t *testing.T) {
	tests := []struct {
		name  string
		reads []posRead
		outs  []outcome
		l10   []uint64 // the L10 count of each batch
		lost  uint64   // unreported after the last batch
	}{
		{"missed, acknowledged",
			[]posRead{{offsets: []uint64{15}, next: cur("e", 16), missed: 5}, {offsets: []uint64{16}, next: cur("e", 17)}},
			[]outcome{outOK, outOK}, []uint64{5, 0}, 0},
		{"missed, rejected: reported by the next batch",
			[]posRead{{offsets: []uint64{15, 16}, next: cur("e", 17), missed: 5}, {offsets: []uint64{17}, next: cur("e", 18)}},
			[]outcome{outRejected, outOK}, []uint64{5, 7}, 0},
		{"rejected twice, then missed",
			[]posRead{{offsets: []uint64{10}, next: cur("e", 11)}, {offsets: []uint64{11, 12}, next: cur("e", 13)},
				{offsets: []uint64{20}, next: cur("e", 21), missed: 7}},
			[]outcome{outRejected, outRejected, outOK}, []uint64{0, 1, 10}, 0},
		{"rejected, then only unparseable records: still to report",
			[]posRead{{offsets: []uint64{10, 11}, next: cur("e", 12)}, {bad: []uint64{12, 13}, next: cur("e", 14)}},
			[]outcome{outRejected, outOK}, []uint64{0, 0}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newPosSim(t, cur("e", 10))
			for i, r := range tc.reads {
				s.read(r)
				if s.b.l10 != tc.l10[i] {
					t.Errorf("batch %d: L10 count %d, want %d", i, s.b.l10, tc.l10[i])
				}
				if s.b.send() {
					s.done(tc.outs[i])
				}
			}
			if n, _ := s.p.loss(); n != tc.lost {
				t.Errorf("unreported %d, want %d", n, tc.lost)
			}
		})
	}
}
