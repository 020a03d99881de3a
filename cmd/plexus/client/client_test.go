package client

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestReadEvents(t *testing.T) {
	in := ": keep-alive\n\nid: e1:1\ndata: line one\n\nid: e1:2\ndata: a\ndata: b\n\ndata: notice without id\n\n"
	var got []string
	err := readEvents(strings.NewReader(in), func(id, data string) { got = append(got, id+"|"+data) }, func() error { return nil })
	want := []string{"e1:1|line one", "e1:2|a\nb", "|notice without id"}
	if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("readEvents = %q, %v; want %q", got, err, want)
	}
}

func TestHint(t *testing.T) {
	names := []string{"channels", "tokens", "drains", "logs", "tail"}
	for _, tc := range []struct{ in, want string }{
		{"chanels", `; did you mean "channels"?`},
		{"tial", `; did you mean "tail"?`},
		{"drain", `; did you mean "drains"?`},
		{"zzzzzz", "; one of: channels, drains, logs, tail, tokens"},
	} {
		if got := hint(tc.in, names); got != tc.want {
			t.Errorf("hint(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if got, err := parseSince("2h", now); err != nil || !got.Equal(now.Add(-2*time.Hour)) {
		t.Errorf("parseSince(2h) = %v, %v", got, err)
	}
	if got, err := parseSince("2024-05-01T10:00:00Z", now); err != nil || !got.Equal(now.Add(-2*time.Hour)) {
		t.Errorf("parseSince(RFC 3339) = %v, %v", got, err)
	}
	if _, err := parseSince("yesterday", now); err == nil {
		t.Error("parseSince(yesterday): no error")
	}
}

func TestPrinterColoursByProcessType(t *testing.T) {
	var b bytes.Buffer
	p := &printer{colour: true}
	p.w = newWriter(&b)
	p.line("2024-05-01T10:00:00Z app[web.1]: a")
	p.line("2024-05-01T10:00:01Z app[web.2]: b")
	p.line("no prefix here")
	p.flush()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	c1, c2 := lines[0][:strings.Index(lines[0], "m")], lines[1][:strings.Index(lines[1], "m")]
	if !strings.HasPrefix(lines[0], "\x1b[") || c1 != c2 || !strings.HasSuffix(lines[0], "\x1b[0m a") {
		t.Errorf("coloured lines %q: want web.1 and web.2 in the same colour, the message plain", lines)
	}
	if lines[2] != "no prefix here" {
		t.Errorf("line without a prefix = %q", lines[2])
	}
}
