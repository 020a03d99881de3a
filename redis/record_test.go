package redis

import (
	"bytes"
	"testing"

	"github.com/plexus-router/plexus/channels"
)

func TestEntryID(t *testing.T) {
	for _, tc := range []struct {
		id          string
		last, count uint64
		ok          bool
	}{
		{"10-3", 10, 3, true},
		{"1-1", 1, 1, true},
		{"3-4", 0, 0, false}, // more messages than offsets
		{"5-0", 0, 0, false},
		{"x-1", 0, 0, false},
		{"12", 0, 0, false},
	} {
		last, count, err := parseEntryID(tc.id)
		if (err == nil) != tc.ok || last != tc.last || count != tc.count {
			t.Errorf("parseEntryID(%q) = %d, %d, %v", tc.id, last, count, err)
		}
	}
	if got := entryID(42, 7); got != "42-7" {
		t.Errorf("entryID(42, 7) = %q", got)
	}
}

func TestCursorFormat(t *testing.T) {
	for _, c := range []channels.Cursor{{}, {Epoch: "abc", Offset: 9}, {Epoch: "a:b", Offset: 1}, {Epoch: "e", Offset: 5, Pending: 300}} {
		got, ok := parseCursor(formatCursor(c))
		if !ok || got != c {
			t.Errorf("parseCursor(formatCursor(%+v)) = %+v, %v", c, got, ok)
		}
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		kind keyKind
		id   string
	}{
		{"ch:12:data", kindChannel, "12"},
		{"ch:app:web:data", kindChannel, "app:web"},
		{"ch:12:log", kindOther, ""},
		{"ch:12:log:meta", kindOther, ""},
		{"ch:12:tokens", kindOther, ""},
		{"tok:t.x:data", kindToken, "t.x"},
		{"drain:5:data", kindDrain, "5"},
		{"drain:x:data", kindOther, ""},
		{"cred:ABC", kindCred, "ABC"},
		{"cred:", kindOther, ""},
		{"session:abc", kindOther, ""},
	} {
		kind, id := parseKey(tc.key)
		if kind != tc.kind || id != tc.id {
			t.Errorf("parseKey(%q) = %v, %q; want %v, %q", tc.key, kind, id, tc.kind, tc.id)
		}
	}
}

// FuzzEntry: decoding never panics, and what appendRecord frames decodes
// back to the same messages and times.
func FuzzEntry(f *testing.F) {
	f.Add([]byte("hello"), []byte(""), int64(1))
	f.Add([]byte("<134>1 - h a - - - x"), []byte("second"), int64(1700000000000000000))
	f.Add([]byte{0, 0, 0, 9, 1, 2}, []byte{0xff}, int64(-1))
	f.Fuzz(func(t *testing.T, a, b []byte, tm int64) {
		// Arbitrary bytes as an entry: errors, never panics.
		_ = decodeEntry(1, string(a), func(uint64, int64, string) bool { return true })

		d := appendRecord(nil, tm, a)
		d = appendRecord(d, tm+1, b)
		var got [][]byte
		var times []int64
		var offs []uint64
		err := decodeEntry(7, string(d), func(off uint64, t int64, m string) bool {
			got = append(got, []byte(m))
			times = append(times, t)
			offs = append(offs, off)
			return true
		})
		if err != nil || len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) ||
			times[0] != tm || times[1] != tm+1 || offs[0] != 7 || offs[1] != 8 {
			t.Fatalf("round trip of %q, %q at %d: %q %v %v, %v", a, b, tm, got, times, offs, err)
		}
		var r channels.Records
		next, full, err := addRecords(&r, 7, 8, string(d), 0, 0)
		if err != nil || full || next != 9 || r.Len() != 1 || !bytes.Equal(r.At(0).Data, b) {
			t.Fatalf("addRecords from 8: next %d full %v err %v len %d", next, full, err, r.Len())
		}
	})
}
