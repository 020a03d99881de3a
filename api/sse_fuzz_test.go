package api

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// FuzzAppendEvent checks that an SSE event decodes (as a browser's
// EventSource does) to the session line without its trailing newline, with
// line breaks normalized to "\n", and that the id survives.
func FuzzAppendEvent(f *testing.F) {
	for _, s := range []string{"", "plain line\n", "two\nlines\n", "cr\r\nlf\rmix\n\n", "data: x\n\nid: 3", ":comment"} {
		f.Add(s, uint64(7))
	}
	f.Fuzz(func(t *testing.T, line string, offset uint64) {
		ev := appendEvent(nil, "e1", offset, true, []byte(line))
		if !bytes.HasSuffix(ev, []byte("\n\n")) {
			t.Fatalf("event %q does not end with a blank line", ev)
		}
		fields := strings.Split(string(ev[:len(ev)-2]), "\n")
		if fields[0] != "id: e1:"+strconv.FormatUint(offset, 10) {
			t.Fatalf("id field %q", fields[0])
		}
		var data []string
		for _, fl := range fields[1:] {
			v, ok := strings.CutPrefix(fl, "data: ")
			if !ok {
				t.Fatalf("field %q of event %q is not data", fl, ev)
			}
			if strings.ContainsAny(v, "\r\n") {
				t.Fatalf("data field %q holds a line break", v)
			}
			data = append(data, v)
		}
		want := strings.TrimSuffix(line, "\n")
		want = strings.ReplaceAll(want, "\r\n", "\n")
		want = strings.ReplaceAll(want, "\r", "\n")
		if got := strings.Join(data, "\n"); got != want {
			t.Fatalf("decoded %q, want %q", got, want)
		}
	})
}
