package api

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/drains"
)

// appendAt appends seqMsg(from..to) to ch in one batch ingested at t.
func (e *env) appendAt(ch string, from, to int, t time.Time) {
	e.t.Helper()
	b := &channels.Batch{ChannelID: ch, Time: t.UnixNano()}
	for i := from; i <= to; i++ {
		b.Add([]byte(seqMsg(i)))
	}
	if err := e.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
		e.t.Fatal(err)
	}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// TestSessionSinceTime: a session with since_time starts at the first
// message ingested at or after it (equal times: the lowest offset) and
// flows into the tail without a gap.
func TestSessionSinceTime(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.History = 5 }))
	ch, _ := e.channel("app")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.appendAt(ch, 1, 10, t0)
	e.appendAt(ch, 11, 20, t0.Add(10*time.Second))
	e.appendAt(ch, 21, 30, t0.Add(20*time.Second))

	// History only: everything from the instant on, not limited by num
	// or History.
	_, br, _ := e.open(e.session(`{"channel_id":"`+ch+`","num":"3","since_time":"`+rfc3339(t0.Add(10*time.Second))+`"}`), nil)
	wantConsecutive(t, "history from time", readSeq(t, br, 30), 11)

	// Tail: history from the instant, then live messages.
	_, br, _ = e.open(e.session(`{"channel_id":"`+ch+`","tail":true,"since_time":"`+rfc3339(t0.Add(15*time.Second))+`"}`), nil)
	got := readSeq(t, br, 30)
	e.appendAt(ch, 31, 35, time.Now())
	wantConsecutive(t, "history and tail from time", append(got, readSeq(t, br, 35)...), 21)

	// A time after every message: only the tail.
	_, br, _ = e.open(e.session(`{"channel_id":"`+ch+`","tail":true,"since_time":"`+rfc3339(time.Now().Add(time.Hour))+`"}`), nil)
	e.appendAt(ch, 36, 36, time.Now())
	wantConsecutive(t, "future time", readSeq(t, br, 36), 36)

	// SSE with the query parameter (it overrides the body's).
	sse := map[string]string{"Accept": "text/event-stream"}
	u := e.session(`{"channel_id":"` + ch + `","since_time":"` + rfc3339(t0) + `"}`)
	_, br, _ = e.open(u+"?since_time="+url.QueryEscape(rfc3339(t0.Add(20*time.Second))), sse)
	ev := readEvent(t, br)
	if ev.id != e.eventID(ch, 21) || !strings.HasSuffix(ev.data, "seq 21") {
		t.Fatalf("first SSE event from since_time = %+v, want offset 21", ev)
	}
	wantResp(t, "bad since_time query", e.do(req{method: "GET", url: u + "?since_time=yesterday", header: sse}),
		422, "text/html", sinceTimeError)

	// Invalid since_time is refused when the session is created.
	body := `{"channel_id":"` + ch + `","since_time":"not a time"}`
	wantResp(t, "legacy text", e.call("POST", "/sessions", body), 422, "text/html", sinceTimeError)
	wantResp(t, "v2 JSON", e.call("POST", "/v2/sessions", body), 422, "application/json", `{"error":"`+sinceTimeError+`"}`)
	wantResp(t, "v3", e.call("POST", "/v3/sessions", body), 422, "application/json", `{"error":"`+sinceTimeError+`"}`)
	wantResp(t, "number", e.call("POST", "/v3/sessions", `{"channel_id":"`+ch+`","since_time":5}`), 422, "application/json", `{"error":"`+sinceTimeError+`"}`)
	if r := e.call("POST", "/v3/sessions", `{"channel_id":"`+ch+`","since_time":null}`); r.code != 201 {
		t.Errorf("since_time null = %v, want 201", r)
	}
}

// logsFrames splits a logplex-1 body into its messages.
func logsFrames(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for body != "" {
		sp := strings.IndexByte(body, ' ')
		n, err := strconv.Atoi(body[:max(sp, 0)])
		if sp < 0 || err != nil || len(body) < sp+1+n {
			t.Fatalf("bad frame at %q", body[:min(len(body), 40)])
		}
		out = append(out, body[sp+1:sp+1+n])
		body = body[sp+1+n:]
	}
	return out
}

func frameSeq(t *testing.T, f string) int {
	t.Helper()
	_, num, ok := strings.Cut(strings.TrimRight(f, "x\n"), "seq ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil {
		t.Fatalf("unexpected frame %q", f)
	}
	return n
}

// TestLogsPaging walks a log much bigger than a page with after= and
// Plexus-Next-Offset, pages cut by max_bytes or limit.
func TestLogsPaging(t *testing.T) {
	e := newEnv(t, withRetention(channels.Retention{Count: 1 << 20}))
	if r := e.call("PUT", "/v3/channels/pg", `{}`); r.code != 201 {
		t.Fatal(r)
	}
	const total = 600
	for i := 1; i <= total; i += 50 {
		b := &channels.Batch{ChannelID: "pg", Time: time.Now().UnixNano()}
		for j := i; j < i+50; j++ {
			b.Add([]byte(seqMsg(j) + strings.Repeat("x", j%37)))
		}
		if err := e.log.Append(context.Background(), []*channels.Batch{b}); err != nil {
			t.Fatal(err)
		}
	}
	page := func(q string) (resp, []int) {
		t.Helper()
		r := e.call("GET", "/v3/channels/pg/logs?"+q, "")
		if r.code != 200 || r.header.Get("Content-Type") != "application/logplex-1" {
			t.Fatalf("GET logs?%s = %v", q, r)
		}
		var seqs []int
		for _, f := range logsFrames(t, r.body) {
			seqs = append(seqs, frameSeq(t, f))
		}
		if c := r.header.Get("Logplex-Msg-Count"); c != strconv.Itoa(len(seqs)) {
			t.Fatalf("logs?%s: Logplex-Msg-Count %s for %d frames", q, c, len(seqs))
		}
		return r, seqs
	}

	// Walk by bytes: every page at most max_bytes, truncated until the end.
	const maxBytes = 3000
	var all []int
	after, pages := 0, 0
	for {
		r, seqs := page(fmt.Sprintf("after=%d&max_bytes=%d", after, maxBytes))
		next, err := strconv.Atoi(r.header.Get(headerNextOffset))
		if err != nil {
			t.Fatalf("page %d: %s = %q", pages, headerNextOffset, r.header.Get(headerNextOffset))
		}
		if len(seqs) == 0 {
			if next != after || r.header.Get(headerTruncated) != "" {
				t.Fatalf("empty page after %d: next %d, truncated %q", after, next, r.header.Get(headerTruncated))
			}
			break
		}
		if len(r.body) > maxBytes {
			t.Fatalf("page %d has %d bytes > %d", pages, len(r.body), maxBytes)
		}
		if next != seqs[len(seqs)-1] {
			t.Fatalf("page %d: %s %d, want the last offset %d", pages, headerNextOffset, next, seqs[len(seqs)-1])
		}
		if trunc := r.header.Get(headerTruncated) == "true"; trunc != (next < total) {
			t.Fatalf("page %d ending at %d: truncated %v", pages, next, trunc)
		}
		all = append(all, seqs...)
		after = next
		pages++
	}
	if len(all) != total || pages < 10 {
		t.Fatalf("walk got %d messages in %d pages, want %d in at least 10", len(all), pages, total)
	}
	wantConsecutive(t, "walk", all, 1)

	// Walk by limit: exact pages, never truncated.
	r, seqs := page("limit=7")
	if len(seqs) != 7 || seqs[0] != 1 || r.header.Get(headerNextOffset) != "7" || r.header.Get(headerTruncated) != "" {
		t.Fatalf("first limit page = %v %v", seqs, r.header)
	}
	r, seqs = page("after=7&limit=7")
	if len(seqs) != 7 || seqs[0] != 8 || r.header.Get(headerNextOffset) != "14" {
		t.Fatalf("second limit page = %v %v", seqs, r.header)
	}
	r, seqs = page("after=595&limit=100")
	if len(seqs) != 5 || seqs[0] != 596 || r.header.Get(headerNextOffset) != "600" {
		t.Fatalf("last page = %v %v", seqs, r.header)
	}
	// An epoch-qualified after (as SSE ids are) works too.
	info, _ := e.log.Info(context.Background(), "pg")
	if _, seqs = page("after=" + info.Epoch + ":10&limit=1"); len(seqs) != 1 || seqs[0] != 11 {
		t.Fatalf("after=<epoch>:10 = %v", seqs)
	}
	// One message bigger than max_bytes still makes a page.
	if r, seqs = page("after=20&max_bytes=1"); len(seqs) != 1 || seqs[0] != 21 || r.header.Get(headerTruncated) != "true" {
		t.Fatalf("max_bytes=1 = %v %v", seqs, r.header)
	}

	// Filters: seqMsg(i) has procid web.(i%3+1).
	_, seqs = page("ps=web.1&limit=5")
	if fmt.Sprint(seqs) != "[3 6 9 12 15]" {
		t.Fatalf("ps=web.1 page = %v", seqs)
	}
	r, seqs = page("ps=web.2&after=590")
	if fmt.Sprint(seqs) != "[592 595 598]" || r.header.Get(headerNextOffset) != "600" {
		t.Fatalf("ps=web.2 after=590 = %v %v", seqs, r.header)
	}
	if _, seqs = page("source=app&limit=2&after=100"); fmt.Sprint(seqs) != "[101 102]" {
		t.Fatalf("source=app = %v", seqs)
	}
	if r, seqs = page("source=other&after=500"); len(seqs) != 0 || r.header.Get(headerNextOffset) != "600" {
		t.Fatalf("source=other = %v %v", seqs, r.header)
	}
}

// TestLogsSinceTimeAndErrors: since_time on the logs route, and 422s.
func TestLogsSinceTimeAndErrors(t *testing.T) {
	e := newEnv(t)
	if r := e.call("PUT", "/v3/channels/st", `{}`); r.code != 201 {
		t.Fatal(r)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.appendAt("st", 1, 10, t0)
	e.appendAt("st", 11, 20, t0.Add(10*time.Second))
	r := e.call("GET", "/v3/channels/st/logs?limit=3&since_time="+url.QueryEscape(rfc3339(t0.Add(5*time.Second))), "")
	frames := logsFrames(t, r.body)
	if r.code != 200 || len(frames) != 3 || frameSeq(t, frames[0]) != 11 || r.header.Get(headerNextOffset) != "13" {
		t.Fatalf("since_time page = %v %v", r, r.header)
	}
	r = e.call("GET", "/v3/channels/st/logs?since_time="+url.QueryEscape(rfc3339(time.Now())), "")
	if r.code != 200 || r.body != "" || r.header.Get(headerNextOffset) != "20" {
		t.Fatalf("since_time now = %v %v", r, r.header)
	}
	for _, tc := range []struct{ q, msg string }{
		{"since_time=yesterday", sinceTimeError},
		{"limit=-1", "'limit' must be a positive integer"},
		{"limit=0", "'limit' must be a positive integer"},
		{"limit=x", "'limit' must be a positive integer"},
		{"max_bytes=-5", "'max_bytes' must be a positive integer"},
		{"after=-1", `'after' must be a message offset (a non-negative integer, optionally "<epoch>:<offset>")`},
		{"after=1&since_time=" + url.QueryEscape(rfc3339(t0)), "give either 'after' or 'since_time', not both"},
	} {
		want, _ := jsonString(tc.msg)
		wantResp(t, tc.q, e.call("GET", "/v3/channels/st/logs?"+tc.q, ""), 422, "application/json", `{"error":`+want+`}`)
	}
	wantResp(t, "unknown channel", e.call("GET", "/v3/channels/nope/logs?limit=1", ""), 404, "", "")
	// The newest-num form is unchanged, and takes the filters.
	r = e.call("GET", "/v3/channels/st/logs?num=4&ps=web.1", "")
	if frames := logsFrames(t, r.body); r.code != 200 || r.header.Get("Logplex-Msg-Count") != "4" || len(frames) != 1 || frameSeq(t, frames[0]) != 18 {
		t.Fatalf("num=4&ps=web.1 = %v %v", r, r.header)
	}
}

func jsonString(s string) (string, error) {
	return string(marshal(s)), nil
}

// TestChannelRetentionAPI: PUT sets a channel's retention, GET shows it,
// bad values are 422, and the drain manager applies it to the log.
func TestChannelRetentionAPI(t *testing.T) {
	e := newEnv(t)
	m := &drains.Manager{
		Config: drains.Config{Retention: channels.Retention{Bytes: 1 << 20, Keep: 10}},
		Store:  e.store, Log: e.log, Logger: zerolog.Nop(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	r := e.call("PUT", "/v3/channels/rt", `{"tokens":["a"],"retention":{"messages":5,"age":"24h"}}`)
	if r.code != 201 || !strings.Contains(r.body, `"retention":{"messages":5,"age":"24h0m0s"}`) || !strings.Contains(r.body, `"tokens":{"a":`) {
		t.Fatalf("PUT with retention = %v", r)
	}
	r = e.call("GET", "/v3/channels/rt", "")
	if r.code != 200 || !strings.HasSuffix(r.body, `"retention":{"messages":5,"age":"24h0m0s"}}`) {
		t.Fatalf("GET = %v", r)
	}
	// Retention alone keeps the tokens; a PUT without it keeps it.
	r = e.call("PUT", "/v3/channels/rt", `{"retention":{"messages":5,"bytes":0,"age":"24h"}}`)
	if r.code != 200 || !strings.Contains(r.body, `"tokens":{"a":`) || !strings.Contains(r.body, `"retention":{"messages":5,"bytes":0,"age":"24h0m0s"}`) {
		t.Fatalf("PUT retention only = %v", r)
	}
	if r = e.call("PUT", "/v3/channels/rt", `{"tokens":["a"]}`); !strings.Contains(r.body, `"retention":{"messages":5,`) {
		t.Fatalf("PUT without retention = %v", r)
	}

	// The log keeps 5 messages (one per record here, so exactly 5).
	for i := 1; i <= 20; i++ {
		e.appendAt("rt", i, i, time.Now())
	}
	eventually(t, "retention of 5 applied", func() bool {
		li, _ := e.log.Info(context.Background(), "rt")
		return li.Next == 21 && li.First == 16
	})
	// Removing it restores the default.
	if r = e.call("PUT", "/v3/channels/rt", `{"tokens":["a"],"retention":null}`); r.code != 200 || strings.Contains(r.body, "retention") {
		t.Fatalf("PUT retention null = %v", r)
	}
	// Applied at once (Run applies it too, on the store's change signal;
	// this makes the appends below see it).
	if err := m.ApplyRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 21; i <= 40; i++ {
		e.appendAt("rt", i, i, time.Now())
	}
	eventually(t, "default retention again", func() bool {
		li, _ := e.log.Info(context.Background(), "rt")
		return li.Next == 41 && li.First == 16
	})

	for _, tc := range []struct{ body, msg string }{
		{`{"retention":{"messages":-1}}`, "'retention.messages' must be a non-negative integer"},
		{`{"retention":{"bytes":"x"}}`, "'retention.bytes' must be a non-negative integer"},
		{`{"retention":{"age":"forever"}}`, `'retention.age' must be a non-negative duration such as "24h"`},
		{`{"retention":{"age":"-1h"}}`, `'retention.age' must be a non-negative duration such as "24h"`},
		{`{"retention":{"count":1}}`, `'retention' has an unknown field "count" (want messages, bytes, age)`},
		{`{"retention":5}`, "'retention' must be an object with messages, bytes and age"},
	} {
		want, _ := jsonString(tc.msg)
		wantResp(t, tc.body, e.call("PUT", "/v3/channels/rt", tc.body), 422, "application/json", `{"error":`+want+`}`)
	}
	if r = e.call("GET", "/v3/channels/rt", ""); bytes.Contains([]byte(r.body), []byte("retention")) {
		t.Fatalf("a refused PUT changed the channel: %v", r)
	}
}
