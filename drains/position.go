package drains

import (
	"time"

	"github.com/plexus-router/plexus/channels"
)

// position is where a drain's delivery is in its channel log: the one
// place that knows it. The worker asks it where to read, what to store and
// when, and tells it what happened (a read, a stored cursor, a finished
// batch); position does no I/O.
//
// The stored form is a channels.Cursor. Before a batch is sent, its start
// and size are stored (the intent: Cursor.Pending records from Offset);
// that write also acknowledges the previous batch. A worker that starts
// from a stored intent (after a restart, or on the node that took the
// drain over) re-sends exactly that batch first, so it carries the same
// Logplex-Frame-Id. Acknowledged positions without a batch in flight are
// stored at most every Config.CursorEvery, and when the worker stops.
//
// Epochs are compared strictly: a cursor of another epoch, or without one
// (taken before the channel's log existed), is another position.
type position struct {
	// acked is where the next batch starts: every message before it was
	// acknowledged by the endpoint, rejected, or counted as lost. Its
	// Pending is 0. Offset 0: not loaded yet.
	acked channels.Cursor
	// stored is the cursor this node last wrote to the store (or read
	// from it); Pending > 0 when it is the intent of a batch.
	stored   channels.Cursor
	storedAt time.Time
	// resend is the size of the batch that a stored intent describes and
	// that was not sent since this position was loaded: the next read
	// takes exactly that many records. 0: none.
	resend uint64
	// unreported counts messages given up (rejected, or lost to retention
	// in a rejected batch) that no L10 line reported yet; since is when
	// the first of them was lost (its ingest time when known).
	unreported      uint64
	unreportedSince time.Time
}

// initialCursor is where a drain without a stored position starts: the
// log's next offset, so that it receives every message appended from now.
func initialCursor(info channels.LogInfo) channels.Cursor {
	return channels.Cursor{Epoch: info.Epoch, Offset: info.Next}
}

// load starts from c, the cursor read from the store (or just written to
// it) at now. A stored intent is re-sent first, as it was.
func (p *position) load(c channels.Cursor, now time.Time) {
	*p = position{
		acked:    channels.Cursor{Epoch: c.Epoch, Offset: c.Offset},
		stored:   c,
		storedAt: now,
		resend:   c.Pending,
	}
}

// loaded reports whether the position is known (load was called).
func (p *position) loaded() bool { return p.acked.Offset != 0 }

// next says where to read: from, and exactly > 0 when the read must take
// exactly that many records (a stored batch to re-send as it was).
func (p *position) next() (from channels.Cursor, exactly uint64) {
	return p.acked, p.resend
}

// skip takes an empty read (no records, nothing missed): the position
// moves to where it ended, res.Next. A reset (the channel's history
// restarted, into an empty log) also drops the batch to re-send: its
// messages are gone. skip reports whether the position changed.
func (p *position) skip(res channels.ReadResult) bool {
	if res.Reset {
		p.resend = 0
	}
	if res.Next == p.acked {
		return false
	}
	p.acked = res.Next
	return true
}

// loss returns the messages given up that the next batch must report in
// its L10 line, and since when.
func (p *position) loss() (uint64, time.Time) { return p.unreported, p.unreportedSince }

// built takes a batch built from the read at next(): it is the one in
// flight from now on, and any stored batch to re-send is this one.
func (p *position) built() { p.resend = 0 }

// intent is the cursor to store before b is sent: where b starts and how
// many offsets it spans, in b's epoch. b starts at the position (so that
// a loss to retention found by the read is found again by a re-send, and
// reported the same way), or at its first record when the read started
// over in a new history (a reset). ok is false when b spans nothing to
// store.
func (p *position) intent(b *batch) (c channels.Cursor, ok bool) {
	from := p.acked
	start := from.Offset
	if start == 0 || b.reset || (from.Epoch != "" && from.Epoch != b.next.Epoch) {
		start = b.first
	}
	if b.next.Offset < start {
		return channels.Cursor{}, false
	}
	return channels.Cursor{Epoch: b.next.Epoch, Offset: start, Pending: b.next.Offset - start}, true
}

// intended records that the intent c (from intent) was stored at now. The
// position becomes the batch's start in the batch's epoch, as stored: the
// same place, named the way the store names it. An epoch-less position
// (taken before the channel's log existed) takes the batch's epoch; a
// position of a lost history becomes the first message of the new one.
// So the stored intent holds the position, and survives a stop that
// abandons the batch.
func (p *position) intended(c channels.Cursor, now time.Time) {
	p.stored, p.storedAt = c, now
	p.acked = channels.Cursor{Epoch: c.Epoch, Offset: c.Offset}
}

// done takes the end of the batch b in flight: acknowledged (outOK) or
// given up (outRejected). The position moves past it; a rejected batch
// adds its messages and the loss it carried to what the next L10 line
// reports, an acknowledged one with an L10 line reported all of it.
func (p *position) done(b *batch, o outcome, now time.Time) {
	switch {
	case o == outOK && b.frames > 0:
		if b.l10 > 0 {
			p.unreported, p.unreportedSince = 0, time.Time{}
		}
	case o == outRejected:
		if p.unreported == 0 && b.missed == 0 {
			p.unreportedSince = now
		} else if b.l10 > 0 {
			p.unreportedSince = b.l10Since
		}
		p.unreported += b.missed + uint64(b.data)
	}
	p.acked = b.next
}

// holds reports whether the stored cursor already says where delivery
// is: the same offset in the same epoch, with or without the batch in
// flight from it (an intent, which must survive a stop that abandons the
// batch).
func (p *position) holds() bool {
	return p.acked.Offset == p.stored.Offset && p.acked.Epoch == p.stored.Epoch
}

// dueIn is how long after now the position is due to be stored (<= 0:
// due now), when it does not hold.
func (p *position) dueIn(now time.Time, every time.Duration) time.Duration {
	return every - now.Sub(p.storedAt)
}

// due returns the cursor to store at now: the acknowledged position, when
// the stored one does not hold it and the last store is at least every
// old.
func (p *position) due(now time.Time, every time.Duration) (channels.Cursor, bool) {
	if p.holds() || p.dueIn(now, every) > 0 {
		return channels.Cursor{}, false
	}
	return p.acked, true
}

// final returns the cursor to store when the worker stops: the
// acknowledged position, unless the stored one holds it (or there is
// none).
func (p *position) final() (channels.Cursor, bool) {
	if !p.loaded() || p.holds() {
		return channels.Cursor{}, false
	}
	return p.acked, true
}

// wrote records that c, from due or final, was stored at now.
func (p *position) wrote(c channels.Cursor, now time.Time) {
	p.stored, p.storedAt = c, now
}
