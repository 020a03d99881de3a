package drains

import (
	"bytes"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// FuzzBatchBuild: whatever the records, consecutive builds consume every
// record exactly once, make progress, and produce bodies that decode
// (with the test's own decoder) into the counted frames.
func FuzzBatchBuild(f *testing.F) {
	f.Add([]byte("<134>1 2024-01-02T03:04:05Z h app web.1 - - hello\x00garbage\x00<1>1 - - - - - - x\n"), uint16(200), true)
	f.Add([]byte("<13>1 2012-12-10T03:00:49Z myhost app web.2 ID47 [meta sequenceId=\"518\"] x\x00\x00<0>1 a b c d e f"), uint16(10), false)
	f.Fuzz(func(t *testing.T, data []byte, target uint16, http bool) {
		msgs := bytes.Split(data, []byte{0})
		fm := &format{http: http, token: goldenToken, target: int(target) + 1}
		var all channels.Records
		for i, m := range msgs {
			all.Add(uint64(i+1), int64(i), m)
		}
		var b batch
		from := channels.Cursor{Epoch: "e", Offset: 1}
		for k := 0; k < len(msgs); {
			var recs channels.Records
			for i := k; i < len(msgs); i++ {
				r := all.At(i)
				recs.Add(r.Offset, r.Time, r.Data)
			}
			res := channels.ReadResult{Epoch: "e", Next: channels.Cursor{Epoch: "e", Offset: uint64(len(msgs) + 1)}}
			b.build(fm, from, &recs, res, 0, time.Time{}, goldenNow)
			if b.records == 0 {
				t.Fatalf("no progress at record %d", k)
			}
			if b.next.Offset != uint64(k+b.records+1) {
				t.Fatalf("next %d after %d records from %d", b.next.Offset, b.records, k+1)
			}
			frames, err := decodeOctets(b.body)
			if err != nil || len(frames) != b.frames || b.frames != b.data {
				t.Fatalf("body: %d frames (%v); batch says frames %d data %d", len(frames), err, b.frames, b.data)
			}
			if b.data > 1 && len(b.body) >= fm.target {
				t.Fatalf("batch of %d messages has %d bytes, target %d", b.data, len(b.body), fm.target)
			}
			k += b.records
			from = b.next
		}
	})
}
