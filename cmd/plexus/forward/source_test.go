package forward

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/plexus-router/plexus/test/plexustest"
)

func testConfig(t *testing.T, args ...string) *Config {
	t.Helper()
	cfg, err := ParseArgs(append([]string{"-url", "http://token:t.x@127.0.0.1:1/logs", "-hostname", "h", "-state", ""}, append(args, "-")...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type cut struct {
	start, end int64
	lines      int
	msgs       []string
}

// feed runs input through a source's line splitting and batching in chunks
// of the given size and returns the batches.
func feed(t *testing.T, cfg *Config, input string, chunk int) []cut {
	t.Helper()
	fw := &Forwarder{cfg: cfg, hardStop: make(chan struct{}), state: &state{files: map[devIno]*fileState{}}}
	s := &source{fw: fw, name: "-", stdinID: "stdin-x", b: newBuilder(cfg, "app"), q: make(chan *batch, 1<<16)}
	for i := 0; i < len(input); i += chunk {
		data := []byte(input[i:min(len(input), i+chunk)])
		s.pos += int64(len(data))
		if !s.consume(data) {
			t.Fatal("consume stopped")
		}
	}
	s.flushCarry()
	s.sealCur()
	close(s.q)
	var out []cut
	for b := range s.q {
		frames, err := plexustest.SplitFrames(b.body)
		if err != nil {
			t.Fatalf("batch body: %v", err)
		}
		var msgs []string
		for _, f := range frames {
			// "<190>1 TIME h app - - - MSG": drop the time.
			parts := strings.SplitN(f, " ", 8)
			msgs = append(msgs, parts[0]+" "+strings.Join(parts[2:], " "))
		}
		if b.key != fmt.Sprintf("h/stdin-x/%d", b.start) {
			t.Errorf("key %q for a batch at %d", b.key, b.start)
		}
		out = append(out, cut{b.start, b.end, b.lines, msgs})
	}
	return out
}

// Batch bounds and messages depend only on the input, not on how it was
// read: a batch sent again after a restart has the same key and content.
func TestBatchesDoNotDependOnReads(t *testing.T) {
	cfg := testConfig(t, "-batch-lines", "7", "-batch-bytes", "300", "-max-line", "40", "-gzip=false")
	var in strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "line %d %s\r\n", i, strings.Repeat("y", (i*37)%130))
		if i%17 == 0 {
			in.WriteString("\n") // empty line
		}
	}
	in.WriteString("no newline at the end")
	want := feed(t, cfg, in.String(), 1<<20)
	for _, chunk := range []int{1, 3, 39, 40, 41, 100} {
		if got := feed(t, cfg, in.String(), chunk); !reflect.DeepEqual(got, want) {
			t.Errorf("read in chunks of %d: batches differ from one read", chunk)
		}
	}
	// Every input byte is in exactly one batch; long lines are split.
	var pos int64
	split := 0
	for _, c := range want {
		if c.start != pos {
			t.Fatalf("batch starts at %d, want %d", c.start, pos)
		}
		pos = c.end
		for _, m := range c.msgs {
			if len(m) > 40+len("<190>1 h app - - - ") {
				t.Errorf("message %q longer than -max-line", m)
			}
			if strings.HasSuffix(m, "\r") {
				t.Errorf("message %q keeps the CR", m)
			}
			if strings.HasSuffix(m, " ") {
				split++
			}
		}
	}
	if pos != int64(in.Len()) {
		t.Errorf("batches end at %d of %d bytes", pos, in.Len())
	}
	if got := want[len(want)-1].msgs; !strings.HasSuffix(got[len(got)-1], "no newline at the end") {
		t.Errorf("last message %q", got[len(got)-1])
	}
}

func TestInputFormatPassThrough(t *testing.T) {
	in := "<13>1 2024-01-01T00:00:00Z host app - - - five424\n<13>Jan  1 00:00:00 host app: three164\nplain\n"
	for _, tt := range []struct {
		format string
		want   []string
	}{
		{"raw", []string{"<190>1 h app - - - <13>1 2024-01-01T00:00:00Z host app - - - five424", "<190>1 h app - - - <13>Jan  1 00:00:00 host app: three164", "<190>1 h app - - - plain"}},
		{"rfc5424", []string{"<13>1 host app - - - five424", "<190>1 h app - - - <13>Jan  1 00:00:00 host app: three164", "<190>1 h app - - - plain"}},
		{"auto", []string{"<13>1 host app - - - five424", "<13>Jan 1 00:00:00 host app: three164", "<190>1 h app - - - plain"}},
	} {
		cfg := testConfig(t, "-input-format", tt.format)
		got := feed(t, cfg, in, 1<<20)
		if len(got) != 1 || len(got[0].msgs) != 3 {
			t.Fatalf("%s: %d batches", tt.format, len(got))
		}
		for i, m := range got[0].msgs {
			if m != tt.want[i] {
				t.Errorf("-input-format %s: message %d = %q, want %q", tt.format, i, m, tt.want[i])
			}
		}
	}
}
