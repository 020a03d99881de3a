// Package logtest is the contract test suite of channels.Log. Every backend
// runs it from its own tests:
//
//	func TestLogContract(t *testing.T) {
//		logtest.Run(t, func(t *testing.T) channels.Log { return openMyLog(t) })
//	}
//
// The suite uses fresh random channel ids in every subtest, so backends
// that share a server between subtests do not see each other's data.
package logtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// Options adapt the suite to a backend.
type Options struct {
	// SkipAge skips the tests of age retention (they take about a second
	// each and need the backend to apply Age by itself).
	SkipAge bool
	// Settle, if set, is called before the suite checks an effect that a
	// backend may apply in the background (age retention): for example to
	// run a sweep at once.
	Settle func()
}

// Run runs the contract suite. open returns a new, working Log for one
// subtest; Run closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) channels.Log, opts ...Options) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"Offsets", testOffsets},
		{"AppendDurable", testAppendDurable},
		{"IdempotencyKey", testIdempotencyKey},
		{"SeveralBatches", testSeveralBatches},
		{"EmptyBatches", testEmptyBatches},
		{"ReadLimits", testReadLimits},
		{"ReadFromZero", testReadFromZero},
		{"Info", testInfo},
		{"UnknownChannel", testUnknownChannel},
		{"RetentionCount", testRetentionCount},
		{"MissedExact", testMissedExact},
		{"RetentionBytes", testRetentionBytes},
		{"RetentionAge", testRetentionAge},
		{"RetentionKeep", testRetentionKeep},
		{"SetRetentionExtends", testSetRetentionExtends},
		{"Seek", testSeek},
		{"SeekRetention", testSeekRetention},
		{"WaitReady", testWaitReady},
		{"WaitWakes", testWaitWakes},
		{"WaitCancel", testWaitCancel},
		{"WaitNoLostWakeup", testWaitNoLostWakeup},
		{"EpochReset", testEpochReset},
		{"FutureCursor", testFutureCursor},
		{"Delete", testDelete},
		{"DeleteWakesWaiter", testDeleteWakesWaiter},
		{"WaitOtherEpoch", testWaitOtherEpoch},
		{"AppendAfterClose", testAppendAfterClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &suite{opts: o, log: open(t), prefix: "logtest-" + channels.RandomHex(6) + "-"}
			t.Cleanup(s.close)
			tc.fn(t, s)
		})
	}
}

type suite struct {
	opts   Options
	log    channels.Log
	prefix string
	once   sync.Once
}

func (s *suite) close() { s.once.Do(func() { s.log.Close() }) }

// ch returns the channel id named name in this subtest.
func (s *suite) ch(name string) string { return s.prefix + name }

func (s *suite) settle() {
	if s.opts.Settle != nil {
		s.opts.Settle()
	}
}

// message returns the i-th test message of a channel (i from 1). Messages
// have different lengths so that byte bounds are exercised.
func message(ch string, i uint64) []byte {
	return fmt.Appendf(nil, "<134>1 2024-01-01T00:00:00Z host app web.1 - - %s line %d %s", ch, i, strings.Repeat("x", int(i%7)))
}

// fixedMessage returns the i-th message of exactly n bytes.
func fixedMessage(i uint64, n int) []byte {
	b := fmt.Appendf(nil, "<134>1 - host app - - - line %d ", i)
	for len(b) < n {
		b = append(b, 'x')
	}
	return b[:n]
}

// appendRange appends messages from..to (inclusive) of ch in one batch.
func appendRange(t *testing.T, l channels.Log, ch string, from, to uint64) {
	t.Helper()
	b := &channels.Batch{ChannelID: ch, Time: time.Now().UnixNano()}
	for i := from; i <= to; i++ {
		b.Add(message(ch, i))
	}
	if err := l.Append(context.Background(), []*channels.Batch{b}); err != nil {
		t.Fatalf("Append(%s, %d..%d) = %v", ch, from, to, err)
	}
}

func info(t *testing.T, l channels.Log, ch string) channels.LogInfo {
	t.Helper()
	li, err := l.Info(context.Background(), ch)
	if err != nil {
		t.Fatalf("Info(%s) = %v", ch, err)
	}
	return li
}

func read(t *testing.T, l channels.Log, ch string, from channels.Cursor, limit, maxBytes int) (channels.ReadResult, *channels.Records) {
	t.Helper()
	var r channels.Records
	res, err := l.Read(context.Background(), ch, from, limit, maxBytes, &r)
	if err != nil {
		t.Fatalf("Read(%s, %+v, %d, %d) = %v", ch, from, limit, maxBytes, err)
	}
	return res, &r
}

// checkRecords checks that r holds the messages of ch with offsets
// first, first+1, ... (as written by appendRange) and returns one past the
// last.
func checkRecords(t *testing.T, ch string, r *channels.Records, first uint64) uint64 {
	t.Helper()
	for i := range r.Len() {
		rec := r.At(i)
		want := first + uint64(i)
		if rec.Offset != want {
			t.Fatalf("%s: record %d has offset %d, want %d", ch, i, rec.Offset, want)
		}
		if !bytes.Equal(rec.Data, message(ch, want)) {
			t.Fatalf("%s: record %d = %q, want %q", ch, want, rec.Data, message(ch, want))
		}
		if rec.Time == 0 {
			t.Fatalf("%s: record %d has no time", ch, want)
		}
	}
	return first + uint64(r.Len())
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testAppendDurable: AppendDurable admits like Append (offsets continue
// across both) and its messages are readable when it returns.
func testAppendDurable(t *testing.T, s *suite) {
	a := s.ch("a")
	appendRange(t, s.log, a, 1, 2)
	b := &channels.Batch{ChannelID: a, Time: time.Now().UnixNano()}
	for i := uint64(3); i <= 5; i++ {
		b.Add(message(a, i))
	}
	if err := s.log.AppendDurable(context.Background(), []*channels.Batch{b}); err != nil {
		t.Fatalf("AppendDurable = %v", err)
	}
	_, r := read(t, s.log, a, channels.Cursor{Offset: 1}, 0, 0)
	if r.Len() != 5 {
		t.Fatalf("Read after AppendDurable returned %d records, want 5", r.Len())
	}
	checkRecords(t, a, r, 1)
	if err := s.log.AppendDurable(context.Background(), nil); err != nil {
		t.Fatalf("AppendDurable(nil) = %v", err)
	}
}

// keyedBatch returns messages from..to of ch in one batch with key.
func keyedBatch(ch, key string, from, to uint64) *channels.Batch {
	b := &channels.Batch{ChannelID: ch, Time: time.Now().UnixNano(), Key: key}
	for i := from; i <= to; i++ {
		b.Add(message(ch, i))
	}
	return b
}

func appendDurable(t *testing.T, l channels.Log, batches ...*channels.Batch) {
	t.Helper()
	if err := l.AppendDurable(context.Background(), batches); err != nil {
		t.Fatalf("AppendDurable = %v", err)
	}
}

// testIdempotencyKey: a batch whose key the channel stored before is not
// stored again, also when sent concurrently; other keys, and the same key
// in another channel, are stored; a keyed batch larger than a backend's
// entries is stored whole, once; unkeyed messages around keyed batches
// keep their order.
func testIdempotencyKey(t *testing.T, s *suite) {
	a, b := s.ch("a"), s.ch("b")
	appendDurable(t, s.log, keyedBatch(a, "k1", 1, 3))
	appendDurable(t, s.log, keyedBatch(a, "k1", 1, 3))
	if next := info(t, s.log, a).Next; next != 4 {
		t.Fatalf("after a keyed batch of 3 sent twice: next = %d, want 4", next)
	}
	appendDurable(t, s.log, keyedBatch(a, "k2", 4, 5), keyedBatch(b, "k1", 1, 2))
	// A repeat in the same call as a new batch.
	appendDurable(t, s.log, keyedBatch(a, "k2", 4, 5), keyedBatch(b, "k2", 3, 3))

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.log.AppendDurable(context.Background(), []*channels.Batch{keyedBatch(a, "k3", 6, 8)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent AppendDurable = %v", err)
		}
	}
	if next := info(t, s.log, a).Next; next != 9 {
		t.Fatalf("after a keyed batch of 3 sent 8 times at once: next = %d, want 9", next)
	}

	appendRange(t, s.log, a, 9, 10)
	for range 2 {
		appendDurable(t, s.log, keyedBatch(a, "k4", 11, 1200))
	}
	appendRange(t, s.log, a, 1201, 1202)
	appendDurable(t, s.log, keyedBatch(a, "k4", 11, 1200))

	for _, c := range []struct {
		ch   string
		next uint64
	}{{a, 1203}, {b, 4}} {
		if next := info(t, s.log, c.ch).Next; next != c.next {
			t.Fatalf("%s: next = %d, want %d", c.ch, next, c.next)
		}
		from := channels.Cursor{Offset: 1}
		for from.Offset < c.next {
			res, r := read(t, s.log, c.ch, from, 0, 0)
			if r.Len() == 0 {
				t.Fatalf("%s: read from %d returned nothing, next %d", c.ch, from.Offset, c.next)
			}
			checkRecords(t, c.ch, r, from.Offset)
			from = res.Next
		}
	}
}

func testOffsets(t *testing.T, s *suite) {
	a, b := s.ch("a"), s.ch("b")
	appendRange(t, s.log, a, 1, 3)
	appendRange(t, s.log, b, 1, 2)
	appendRange(t, s.log, a, 4, 5)
	appendRange(t, s.log, a, 6, 6)

	res, r := read(t, s.log, a, channels.Cursor{Offset: 1}, 0, 0)
	if r.Len() != 6 {
		t.Fatalf("Read(a) returned %d records, want 6", r.Len())
	}
	checkRecords(t, a, r, 1)
	li := info(t, s.log, a)
	if res.Next.Offset != 7 || res.Next.Epoch != li.Epoch || res.Epoch != li.Epoch || li.Epoch == "" {
		t.Fatalf("Read(a) = %+v, Info = %+v: want Next 7 in the channel's epoch", res, li)
	}
	if res.Missed != 0 || res.Reset {
		t.Fatalf("Read(a) = %+v, want no Missed, no Reset", res)
	}
	res, r = read(t, s.log, b, channels.Cursor{Offset: 1}, 0, 0)
	if r.Len() != 2 || res.Next.Offset != 3 {
		t.Fatalf("Read(b) = %+v with %d records, want 2 records, Next 3", res, r.Len())
	}
	checkRecords(t, b, r, 1)
}

func testSeveralBatches(t *testing.T, s *suite) {
	a, b := s.ch("a"), s.ch("b")
	now := time.Now().UnixNano()
	b1 := &channels.Batch{ChannelID: a, Time: now}
	b1.Add(message(a, 1))
	b1.Add(message(a, 2))
	b2 := &channels.Batch{ChannelID: b, Time: now}
	for i := uint64(1); i <= 3; i++ {
		b2.Add(message(b, i))
	}
	b3 := &channels.Batch{ChannelID: a, Time: now + 1}
	b3.Add(message(a, 3))
	if err := s.log.Append(context.Background(), []*channels.Batch{b1, b2, b3}); err != nil {
		t.Fatalf("Append = %v", err)
	}
	for _, ch := range []string{a, b} {
		res, r := read(t, s.log, ch, channels.Cursor{}, 0, 0)
		if r.Len() != 3 || res.Next.Offset != 4 {
			t.Fatalf("Read(%s) = %+v with %d records, want 3", ch, res, r.Len())
		}
		checkRecords(t, ch, r, 1)
	}
	_, r := read(t, s.log, a, channels.Cursor{}, 0, 0)
	if r.At(0).Time != now || r.At(2).Time != now+1 {
		t.Fatalf("record times %d, %d, want the batches' times %d, %d", r.At(0).Time, r.At(2).Time, now, now+1)
	}
}

func testEmptyBatches(t *testing.T, s *suite) {
	a := s.ch("a")
	if err := s.log.Append(context.Background(), nil); err != nil {
		t.Fatalf("Append(nil) = %v", err)
	}
	if err := s.log.Append(context.Background(), []*channels.Batch{{ChannelID: a}}); err != nil {
		t.Fatalf("Append(empty batch) = %v", err)
	}
	if li := info(t, s.log, a); li.First != 1 || li.Next != 1 {
		t.Fatalf("Info after an empty batch = %+v, want First = Next = 1", li)
	}
}

func testReadLimits(t *testing.T, s *suite) {
	a := s.ch("a")
	b := &channels.Batch{ChannelID: a, Time: time.Now().UnixNano()}
	for i := uint64(1); i <= 10; i++ {
		b.Add(fixedMessage(i, 100))
	}
	if err := s.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
		t.Fatal(err)
	}
	check := func(from uint64, limit, maxBytes, wantMin, wantMax int) uint64 {
		t.Helper()
		res, r := read(t, s.log, a, channels.Cursor{Offset: from}, limit, maxBytes)
		if r.Len() < wantMin || r.Len() > wantMax {
			t.Fatalf("Read(from %d, limit %d, maxBytes %d) returned %d records, want %d..%d", from, limit, maxBytes, r.Len(), wantMin, wantMax)
		}
		if maxBytes > 0 && r.Len() > 1 && r.Bytes() > maxBytes {
			t.Fatalf("Read(from %d, maxBytes %d) returned %d bytes in %d records", from, maxBytes, r.Bytes(), r.Len())
		}
		for i := range r.Len() {
			if rec := r.At(i); rec.Offset != from+uint64(i) || !bytes.Equal(rec.Data, fixedMessage(rec.Offset, 100)) {
				t.Fatalf("Read(from %d): record %d = %d %q", from, i, rec.Offset, rec.Data)
			}
		}
		if res.Next.Offset != from+uint64(r.Len()) {
			t.Fatalf("Read(from %d) returned %d records and Next %d", from, r.Len(), res.Next.Offset)
		}
		return res.Next.Offset
	}
	next := check(1, 3, 0, 3, 3)
	next = check(next, 0, 250, 1, 2)
	next = check(next, 0, 10, 1, 1) // at least one record
	next = check(next, 2, 1000, 2, 2)
	next = check(next, 0, 0, 10-int(next)+1, 10-int(next)+1)
	if next != 11 {
		t.Fatalf("reading everything ended at %d, want 11", next)
	}
	check(11, 0, 0, 0, 0)
	check(11, 5, 100, 0, 0)
}

func testReadFromZero(t *testing.T, s *suite) {
	a := s.ch("a")
	s.log.SetRetention(a, channels.Retention{Count: 5})
	for i := uint64(1); i <= 40; i += 4 {
		appendRange(t, s.log, a, i, i+3)
	}
	li := info(t, s.log, a)
	res, r := read(t, s.log, a, channels.Cursor{}, 0, 0)
	if res.Missed != 0 || res.Reset || r.Len() != int(li.Next-li.First) || res.Next.Offset != 41 {
		t.Fatalf("Read(0) = %+v with %d records, Info %+v: want all retained records", res, r.Len(), li)
	}
	if r.Len() < 5 {
		t.Fatalf("Read(0) returned %d records, want >= Count (5)", r.Len())
	}
	checkRecords(t, a, r, li.First)
}

func testInfo(t *testing.T, s *suite) {
	a := s.ch("a")
	if li := info(t, s.log, a); li != (channels.LogInfo{First: 1, Next: 1}) {
		t.Fatalf("Info(unknown) = %+v, want First = Next = 1", li)
	}
	appendRange(t, s.log, a, 1, 4)
	var size int64
	for i := uint64(1); i <= 4; i++ {
		size += int64(len(message(a, i)))
	}
	li := info(t, s.log, a)
	if li.Epoch == "" || li.First != 1 || li.Next != 5 || li.Bytes != size {
		t.Fatalf("Info = %+v, want an epoch, First 1, Next 5, Bytes %d", li, size)
	}
}

func testUnknownChannel(t *testing.T, s *suite) {
	res, r := read(t, s.log, s.ch("none"), channels.Cursor{}, 0, 0)
	if r.Len() != 0 || res.Next.Offset != 1 || res.Missed != 0 || res.Reset {
		t.Fatalf("Read(unknown, 0) = %+v with %d records", res, r.Len())
	}
	res, _ = read(t, s.log, s.ch("none"), channels.Cursor{Offset: 1}, 0, 0)
	if res.Next.Offset != 1 || res.Reset {
		t.Fatalf("Read(unknown, 1) = %+v", res)
	}
}

func testRetentionCount(t *testing.T, s *suite) {
	a := s.ch("a")
	s.log.SetRetention(a, channels.Retention{Count: 10})
	for i := uint64(1); i <= 100; i += 7 {
		appendRange(t, s.log, a, i, min(i+6, 100))
	}
	li := info(t, s.log, a)
	if li.Next != 101 || li.Next-li.First < 10 || li.First < 1 {
		t.Fatalf("Info = %+v, want Next 101 and at least the 10 newest retained", li)
	}
	res, r := read(t, s.log, a, channels.Cursor{Offset: 1}, 0, 0)
	if res.Missed != li.First-1 || r.Len() != int(li.Next-li.First) {
		t.Fatalf("Read(1) = %+v with %d records, Info %+v", res, r.Len(), li)
	}
	if li.First > 1 && res.MissedSince.IsZero() {
		t.Fatalf("Read(1) = %+v: Missed without MissedSince", res)
	}
	checkRecords(t, a, r, li.First)
}

// testMissedExact has a reader fall behind a Count-bounded log again and
// again: what it reads plus what it is told it missed is everything.
func testMissedExact(t *testing.T, s *suite) {
	a := s.ch("a")
	s.log.SetRetention(a, channels.Retention{Count: 10})
	base := time.Now().Add(-time.Hour).UnixNano()
	var total, got, missed uint64
	cursor := channels.Cursor{Offset: 1}
	var r channels.Records
	batchTime := map[uint64]int64{} // offset -> batch time
	for round := 0; round < 60; round++ {
		n := uint64(round*7%25 + 1)
		b := &channels.Batch{ChannelID: a, Time: base + int64(round)*int64(time.Second)}
		for i := total + 1; i <= total+n; i++ {
			b.Add(message(a, i))
			batchTime[i] = b.Time
		}
		if err := s.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
			t.Fatal(err)
		}
		total += n
		for k := 0; k < round%3; k++ {
			res, err := s.log.Read(context.Background(), a, cursor, 4, 0, &r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Reset {
				t.Fatalf("Read(%+v) = %+v: unexpected Reset", cursor, res)
			}
			if res.Missed > 0 {
				if res.MissedSince.IsZero() {
					t.Fatalf("Read(%+v) = %+v: Missed without MissedSince", cursor, res)
				}
				if r.Len() > 0 && res.MissedSince.UnixNano() > r.At(0).Time {
					t.Fatalf("Read(%+v) = %+v: MissedSince after the first record returned (%d)", cursor, res, r.At(0).Time)
				}
				if want := batchTime[cursor.Offset]; res.MissedSince.UnixNano() > batchTime[cursor.Offset+res.Missed-1] {
					t.Fatalf("Read(%+v) = %+v: MissedSince later than the missed messages (first at %d)", cursor, res, want)
				}
			}
			first := cursor.Offset + res.Missed
			checkRecords(t, a, &r, first)
			missed += res.Missed
			got += uint64(r.Len())
			cursor = res.Next
		}
	}
	for {
		res, err := s.log.Read(context.Background(), a, cursor, 4, 0, &r)
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, a, &r, cursor.Offset+res.Missed)
		missed += res.Missed
		got += uint64(r.Len())
		cursor = res.Next
		if r.Len() == 0 {
			break
		}
	}
	if missed == 0 {
		t.Fatalf("the reader missed nothing: the test does not test")
	}
	if got+missed != total || cursor.Offset != total+1 {
		t.Fatalf("read %d + missed %d = %d, want %d appended (cursor %+v)", got, missed, got+missed, total, cursor)
	}
}

func testRetentionBytes(t *testing.T, s *suite) {
	a := s.ch("a")
	const limit = 1000
	s.log.SetRetention(a, channels.Retention{Bytes: limit})
	for i := uint64(1); i <= 30; i++ {
		b := &channels.Batch{ChannelID: a, Time: time.Now().UnixNano()}
		b.Add(fixedMessage(i, 100))
		if err := s.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
			t.Fatal(err)
		}
	}
	b := &channels.Batch{ChannelID: a, Time: time.Now().UnixNano()}
	for i := uint64(31); i <= 50; i++ {
		b.Add(fixedMessage(i, 100))
	}
	if err := s.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
		t.Fatal(err)
	}
	li := info(t, s.log, a)
	if li.Bytes > limit || li.Bytes < 100 || li.Next != 51 {
		t.Fatalf("Info = %+v, want Next 51 and 100 <= Bytes <= %d", li, limit)
	}
	_, r := read(t, s.log, a, channels.Cursor{}, 0, 0)
	if int64(r.Bytes()) != li.Bytes || r.Len() == 0 || r.At(r.Len()-1).Offset != 50 {
		t.Fatalf("Read(0) returned %d records, %d bytes; Info %+v", r.Len(), r.Bytes(), li)
	}
}

func testRetentionAge(t *testing.T, s *suite) {
	if s.opts.SkipAge {
		t.Skip("age retention not tested for this backend")
	}
	a := s.ch("a")
	s.log.SetRetention(a, channels.Retention{Age: 100 * time.Millisecond})
	appendRange(t, s.log, a, 1, 5)
	eventually(t, "age retention to drop every message", func() bool {
		s.settle()
		li := info(t, s.log, a)
		return li.First == 6 && li.Next == 6 && li.Bytes == 0
	})
	res, r := read(t, s.log, a, channels.Cursor{Offset: 2}, 0, 0)
	if res.Missed != 4 || res.MissedSince.IsZero() || r.Len() != 0 || res.Next.Offset != 6 {
		t.Fatalf("Read(2) = %+v with %d records, want Missed 4 since some time, Next 6", res, r.Len())
	}
}

func testRetentionKeep(t *testing.T, s *suite) {
	if s.opts.SkipAge {
		t.Skip("age retention not tested for this backend")
	}
	a := s.ch("a")
	const keep = 3
	s.log.SetRetention(a, channels.Retention{Age: 50 * time.Millisecond, Keep: keep})
	appendRange(t, s.log, a, 1, 10)
	appendRange(t, s.log, a, 11, 12)
	// Backends may drop at a coarser grain: check that the newest Keep
	// stay, through several sweeps.
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
		s.settle()
		li := info(t, s.log, a)
		if li.Next != 13 || li.Next-li.First < keep {
			t.Fatalf("Info = %+v, want Next 13 and the newest %d retained", li, keep)
		}
		time.Sleep(20 * time.Millisecond)
	}
	li := info(t, s.log, a)
	_, r := read(t, s.log, a, channels.Cursor{}, 0, 0)
	if r.Len() != int(li.Next-li.First) {
		t.Fatalf("Read(0) returned %d records, Info %+v", r.Len(), li)
	}
	checkRecords(t, a, r, li.First)
}

func testSetRetentionExtends(t *testing.T, s *suite) {
	a := s.ch("a")
	s.log.SetRetention(a, channels.Retention{Count: 5})
	appendRange(t, s.log, a, 1, 20)
	li := info(t, s.log, a)
	if li.Next-li.First < 5 {
		t.Fatalf("Info = %+v, want >= 5 retained", li)
	}
	s.log.SetRetention(a, channels.Retention{Count: 100})
	appendRange(t, s.log, a, 21, 40)
	li2 := info(t, s.log, a)
	if li2.Next != 41 || li2.First > li.First || li2.Next-li2.First < 25 {
		t.Fatalf("Info after extending = %+v (before %+v), want the 20 new and every retained message", li2, li)
	}
	s.log.SetRetention(a, channels.Retention{})
	_, r := read(t, s.log, a, channels.Cursor{}, 0, 0)
	checkRecords(t, a, r, info(t, s.log, a).First)
}

func testWaitReady(t *testing.T, s *suite) {
	a := s.ch("a")
	appendRange(t, s.log, a, 1, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for next := uint64(0); next <= 3; next++ {
		if err := s.log.Wait(ctx, a, channels.Cursor{Offset: next}); err != nil {
			t.Fatalf("Wait(%d) with 3 messages = %v, want nil at once", next, err)
		}
	}
}

// waitAsync starts Wait (from offset next, in the epoch current at the
// call) in a goroutine and returns its result channel.
func waitAsync(ctx context.Context, l channels.Log, ch string, next uint64) <-chan error {
	return waitAsyncFrom(ctx, l, ch, channels.Cursor{Offset: next})
}

// waitAsyncFrom starts Wait(from) in a goroutine and returns its result
// channel.
func waitAsyncFrom(ctx context.Context, l channels.Log, ch string, from channels.Cursor) <-chan error {
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, ch, from) }()
	return done
}

func expectBlocked(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned %v, want it to block", what, err)
	case <-time.After(50 * time.Millisecond):
	}
}

func expectReturn(t *testing.T, done <-chan error, what string, want error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, want) {
			t.Fatalf("%s = %v, want %v", what, err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

func testWaitWakes(t *testing.T, s *suite) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := s.ch("a")
	// A channel without a log yet.
	done := waitAsync(ctx, s.log, a, 1)
	expectBlocked(t, done, "Wait(new channel, 1)")
	appendRange(t, s.log, a, 1, 1)
	expectReturn(t, done, "Wait(new channel, 1) after an append", nil)

	done = waitAsync(ctx, s.log, a, 2)
	expectBlocked(t, done, "Wait(2)")
	appendRange(t, s.log, a, 2, 3)
	expectReturn(t, done, "Wait(2) after an append", nil)
}

func testWaitCancel(t *testing.T, s *suite) {
	a := s.ch("a")
	appendRange(t, s.log, a, 1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := waitAsync(ctx, s.log, a, 2)
	expectBlocked(t, done, "Wait(2)")
	cancel()
	expectReturn(t, done, "Wait(2) after cancel", context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := s.log.Wait(ctx, a, channels.Cursor{Offset: 2}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(2) with a deadline = %v, want %v", err, context.DeadlineExceeded)
	}
}

// testWaitNoLostWakeup runs a writer against readers that Read and Wait:
// each reader must see every offset once, in order.
func testWaitNoLostWakeup(t *testing.T, s *suite) {
	a := s.ch("a")
	const total = 10000
	s.log.SetRetention(a, channels.Retention{Count: total * 2})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- follow(ctx, s.log, a, total)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := uint64(1)
		for k := 0; next <= total; k++ {
			n := uint64(k%17 + 1)
			b := &channels.Batch{ChannelID: a, Time: time.Now().UnixNano()}
			for i := next; i < next+n && i <= total; i++ {
				b.Add(message(a, i))
			}
			if err := s.log.Append(ctx, []*channels.Batch{b}); err != nil {
				errs <- fmt.Errorf("append: %w", err)
				return
			}
			next += uint64(b.Len())
			if k%5 == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func follow(ctx context.Context, l channels.Log, ch string, total uint64) error {
	var r channels.Records
	cursor := channels.Cursor{Offset: 1}
	for cursor.Offset <= total {
		res, err := l.Read(ctx, ch, cursor, 64, 0, &r)
		if err != nil {
			return fmt.Errorf("Read(%+v): %w", cursor, err)
		}
		if res.Missed != 0 || res.Reset {
			return fmt.Errorf("Read(%+v) = %+v: unexpected loss", cursor, res)
		}
		for i := range r.Len() {
			rec := r.At(i)
			if want := cursor.Offset + uint64(i); rec.Offset != want || !bytes.Equal(rec.Data, message(ch, want)) {
				return fmt.Errorf("Read(%+v): record %d = %d %q, want offset %d", cursor, i, rec.Offset, rec.Data, want)
			}
		}
		if res.Next.Offset != cursor.Offset+uint64(r.Len()) {
			return fmt.Errorf("Read(%+v) returned %d records and Next %+v", cursor, r.Len(), res.Next)
		}
		cursor = res.Next
		if r.Len() == 0 {
			if err := l.Wait(ctx, ch, cursor); err != nil {
				return fmt.Errorf("Wait(%d): %w", cursor.Offset, err)
			}
		}
	}
	return nil
}

func testEpochReset(t *testing.T, s *suite) {
	a := s.ch("a")
	appendRange(t, s.log, a, 1, 3)
	epoch := info(t, s.log, a).Epoch

	res, r := read(t, s.log, a, channels.Cursor{Epoch: epoch, Offset: 2}, 0, 0)
	if res.Reset || r.Len() != 2 || res.Next != (channels.Cursor{Epoch: epoch, Offset: 4}) {
		t.Fatalf("Read(own epoch, 2) = %+v with %d records", res, r.Len())
	}
	checkRecords(t, a, r, 2)
	res, r = read(t, s.log, a, channels.Cursor{Offset: 2}, 0, 0)
	if res.Reset || r.Len() != 2 {
		t.Fatalf("Read(no epoch, 2) = %+v with %d records", res, r.Len())
	}
	res, r = read(t, s.log, a, channels.Cursor{Epoch: "bogus-" + epoch, Offset: 3}, 0, 0)
	if !res.Reset || res.Epoch != epoch || r.Len() != 3 || res.Next != (channels.Cursor{Epoch: epoch, Offset: 4}) {
		t.Fatalf("Read(foreign epoch, 3) = %+v with %d records, want Reset and every record of epoch %s", res, r.Len(), epoch)
	}
	checkRecords(t, a, r, 1)

	// A new history starts a new epoch at offset 1.
	if err := s.log.Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	appendRange(t, s.log, a, 1, 2)
	li := info(t, s.log, a)
	if li.Epoch == "" || li.Epoch == epoch || li.First != 1 || li.Next != 3 {
		t.Fatalf("Info after Delete and Append = %+v, want a new epoch (not %s) from 1", li, epoch)
	}
	res, r = read(t, s.log, a, channels.Cursor{Epoch: epoch, Offset: 4}, 0, 0)
	if !res.Reset || res.Epoch != li.Epoch || r.Len() != 2 || res.Next != (channels.Cursor{Epoch: li.Epoch, Offset: 3}) {
		t.Fatalf("Read(old epoch, 4) = %+v with %d records, want Reset and the new history", res, r.Len())
	}
	checkRecords(t, a, r, 1)
}

func testFutureCursor(t *testing.T, s *suite) {
	a := s.ch("a")
	appendRange(t, s.log, a, 1, 3)
	li := info(t, s.log, a)
	res, _ := read(t, s.log, a, channels.Cursor{Epoch: li.Epoch, Offset: 50}, 0, 0)
	if !res.Reset || res.Next.Epoch != li.Epoch || res.Next.Offset > li.Next {
		t.Fatalf("Read(offset 50 of 3) = %+v, want Reset and a cursor within the log (Info %+v)", res, li)
	}
}

func testDelete(t *testing.T, s *suite) {
	a, b := s.ch("a"), s.ch("b")
	appendRange(t, s.log, a, 1, 3)
	appendRange(t, s.log, b, 1, 3)
	if err := s.log.Delete(context.Background(), a); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if li := info(t, s.log, a); li.First != 1 || li.Next != 1 || li.Bytes != 0 || li.Epoch != "" {
		t.Fatalf("Info after Delete = %+v, want an empty log", li)
	}
	if res, r := read(t, s.log, a, channels.Cursor{}, 0, 0); r.Len() != 0 || res.Next.Offset != 1 {
		t.Fatalf("Read after Delete = %+v with %d records", res, r.Len())
	}
	if li := info(t, s.log, b); li.Next != 4 {
		t.Fatalf("Info(other channel) after Delete = %+v", li)
	}
	if err := s.log.Delete(context.Background(), s.ch("none")); err != nil {
		t.Fatalf("Delete(unknown) = %v", err)
	}
}

func testDeleteWakesWaiter(t *testing.T, s *suite) {
	a := s.ch("a")
	appendRange(t, s.log, a, 1, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := waitAsync(ctx, s.log, a, 6)
	expectBlocked(t, done, "Wait(6)")
	if err := s.log.Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	appendRange(t, s.log, a, 1, 1) // new epoch, offset 1 < 6
	expectReturn(t, done, "Wait(6) after the epoch changed", nil)
}

// testWaitOtherEpoch: Wait from a cursor of a history that is gone returns
// at once, even when the new history already reached the cursor's offset.
// A reader that read to the end of a channel whose Redis shard then
// restarted and took as many messages again used to wait in the new
// history for the offset it was at in the old one.
func testWaitOtherEpoch(t *testing.T, s *suite) {
	a := s.ch("a")
	appendRange(t, s.log, a, 1, 3)
	res, _ := read(t, s.log, a, channels.Cursor{}, 0, 0)
	old := res.Next // at the end: Wait(old) blocks
	if old.Epoch == "" || old.Offset != 4 {
		t.Fatalf("Read to the end: Next = %+v, want offset 4 in an epoch", old)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx)
	done := waitAsyncFrom(wctx, s.log, a, old)
	expectBlocked(t, done, "Wait(end of the history)")
	wcancel()
	expectReturn(t, done, "Wait(end of the history) after cancel", context.Canceled)

	if err := s.log.Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	expectReturn(t, waitAsyncFrom(ctx, s.log, a, old), "Wait(cursor of a deleted history)", nil)
	appendRange(t, s.log, a, 1, 3) // a new history, at the same offset
	li := info(t, s.log, a)
	if li.Epoch == old.Epoch || li.Next != old.Offset {
		t.Fatalf("Info after Delete and 3 appends = %+v, want a new epoch (not %s) up to offset %d", li, old.Epoch, old.Offset)
	}
	expectReturn(t, waitAsyncFrom(ctx, s.log, a, old), "Wait(cursor of the old history at the new one's end)", nil)

	// A cursor of the new history, or without an epoch, waits in it.
	for _, from := range []channels.Cursor{{Epoch: li.Epoch, Offset: li.Next}, {Offset: li.Next}} {
		wctx, wcancel := context.WithCancel(ctx)
		done := waitAsyncFrom(wctx, s.log, a, from)
		expectBlocked(t, done, fmt.Sprintf("Wait(%+v)", from))
		wcancel()
		expectReturn(t, done, fmt.Sprintf("Wait(%+v) after cancel", from), context.Canceled)
	}
}

func testAppendAfterClose(t *testing.T, s *suite) {
	a := s.ch("a")
	appendRange(t, s.log, a, 1, 1)
	if err := s.log.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	s.once.Do(func() {})
	b := &channels.Batch{ChannelID: a, Time: time.Now().UnixNano()}
	b.Add(message(a, 2))
	if err := s.log.Append(context.Background(), []*channels.Batch{b}); err == nil {
		t.Fatalf("Append after Close = nil, want an error")
	}
}

// appendAt appends messages from..to (inclusive) of ch in one batch with
// ingest time at.
func appendAt(t *testing.T, l channels.Log, ch string, from, to uint64, at time.Time) {
	t.Helper()
	b := &channels.Batch{ChannelID: ch, Time: at.UnixNano()}
	for i := from; i <= to; i++ {
		b.Add(message(ch, i))
	}
	if err := l.Append(context.Background(), []*channels.Batch{b}); err != nil {
		t.Fatalf("Append(%s, %d..%d) = %v", ch, from, to, err)
	}
}

func seek(t *testing.T, l channels.Log, ch string, at time.Time) channels.Cursor {
	t.Helper()
	c, err := l.Seek(context.Background(), ch, at)
	if err != nil {
		t.Fatalf("Seek(%s, %v) = %v", ch, at, err)
	}
	return c
}

// testSeek: Seek finds the first message ingested at or after a time;
// among equal times the lowest offset; before everything the first
// message, after everything the next offset.
func testSeek(t *testing.T, s *suite) {
	a := s.ch("a")
	if c := seek(t, s.log, s.ch("unknown"), time.Now()); c.Offset != 1 {
		t.Fatalf("Seek(unknown channel) = %+v, want offset 1", c)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	appendAt(t, s.log, a, 1, 3, t0)
	appendAt(t, s.log, a, 4, 5, t0.Add(10*time.Second))
	appendAt(t, s.log, a, 6, 8, t0.Add(10*time.Second)) // equal time: ties by offset
	appendAt(t, s.log, a, 9, 10, t0.Add(20*time.Second))
	for i := uint64(11); i <= 40; i++ { // many small records
		appendAt(t, s.log, a, i, i, t0.Add(time.Duration(20+i)*time.Second))
	}
	epoch := info(t, s.log, a).Epoch
	cases := []struct {
		name string
		at   time.Time
		want uint64
	}{
		{"long before", t0.Add(-time.Hour), 1},
		{"zero time", time.Time{}, 1},
		{"first time", t0, 1},
		{"just after first", t0.Add(time.Nanosecond), 4},
		{"equal times", t0.Add(10 * time.Second), 4},
		{"between", t0.Add(15 * time.Second), 9},
		{"third", t0.Add(20 * time.Second), 9},
		{"single", t0.Add(31 * time.Second), 11},
		{"middle", t0.Add(45 * time.Second), 25},
		{"last", t0.Add(60 * time.Second), 40},
		{"after last", t0.Add(60*time.Second + 1), 41},
		{"far future", t0.Add(1000 * time.Hour), 41},
	}
	for _, tc := range cases {
		c := seek(t, s.log, a, tc.at)
		if c.Offset != tc.want || c.Epoch != epoch {
			t.Errorf("Seek(%s) = %+v, want offset %d in epoch %s", tc.name, c, tc.want, epoch)
		}
		// Reading from the cursor gives the message found, with that time.
		if tc.want <= 40 {
			_, r := read(t, s.log, a, c, 1, 0)
			if r.Len() != 1 || r.At(0).Offset != tc.want || r.At(0).Time < channels.TimeNanos(tc.at) {
				t.Errorf("Read(Seek(%s)) = %d records (first %+v), want offset %d at or after %v", tc.name, r.Len(), r.At(0), tc.want, tc.at)
			}
		}
	}
}

// testSeekRetention: a time before the oldest retained message seeks to
// the oldest retained message, never to a trimmed one.
func testSeekRetention(t *testing.T, s *suite) {
	a := s.ch("a")
	s.log.SetRetention(a, channels.Retention{Count: 10})
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := uint64(1); i <= 100; i += 5 {
		appendAt(t, s.log, a, i, i+4, t0.Add(time.Duration(i)*time.Second))
	}
	li := info(t, s.log, a)
	if li.First <= 1 {
		t.Fatalf("Info = %+v: nothing trimmed", li)
	}
	if c := seek(t, s.log, a, t0); c.Offset != li.First {
		t.Fatalf("Seek(before retention) = %+v, want the first retained offset %d", c, li.First)
	}
	if c := seek(t, s.log, a, t0.Add(96*time.Second)); c.Offset != 96 {
		t.Fatalf("Seek(newest record) = %+v, want 96", c)
	}
	if c := seek(t, s.log, a, t0.Add(97*time.Second)); c.Offset != 101 {
		t.Fatalf("Seek(after the newest) = %+v, want 101", c)
	}
}
