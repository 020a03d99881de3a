package client

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
)

// sessionFlags are the filters `logs` and `tail` share.
type sessionFlags struct {
	num            int
	since          string
	ps, source     string
	filter, colour string
}

func (e *env) sessionFlagSet(name, usage string, num int) (*sessionFlags, *flag.FlagSet) {
	sf := &sessionFlags{}
	fs := e.flags(name, usage)
	fs.IntVar(&sf.num, "n", num, "lines of history to print first (-1: all retained)")
	fs.StringVar(&sf.since, "since", "", "only lines since TIME: RFC 3339 (2024-05-01T10:00:00Z) or a duration ago (15m, 2h)")
	fs.StringVar(&sf.ps, "ps", "", "only this process: web matches web.1, web.2…; web.1 only web.1")
	fs.StringVar(&sf.source, "source", "", "only lines sent with this token name (e.g. app)")
	fs.StringVar(&sf.filter, "filter", "", "only lines matching EXPR (the server's filter syntax)")
	fs.StringVar(&sf.colour, "color", "auto", "colour lines by process: auto (on a terminal), always or never")
	return sf, fs
}

// sessionBody builds the POST /v3/sessions body.
func (sf *sessionFlags) sessionBody(ch string, tail bool, now time.Time) (map[string]any, error) {
	if sf.num < -1 {
		return nil, usagef("-n %d: want a count, or -1 for all retained lines", sf.num)
	}
	body := map[string]any{"channel_id": ch, "num": sf.num}
	if tail {
		body["tail"] = true
	}
	if sf.ps != "" {
		body["ps"] = sf.ps
	}
	if sf.source != "" {
		body["source"] = sf.source
	}
	if sf.filter != "" {
		body["filter"] = sf.filter
	}
	if sf.since != "" {
		t, err := parseSince(sf.since, now)
		if err != nil {
			return nil, err
		}
		body["since_time"] = t.UTC().Format(time.RFC3339Nano)
	}
	return body, nil
}

// parseSince reads -since: a time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("-since %q: want a time (2024-05-01T10:00:00Z) or a duration ago (15m, 2h)", s)
}

const logsUsage = `  plexus logs CHANNEL [-n N] [-since TIME] [-ps PROC] [-source TOKEN] [-filter EXPR]

Prints the newest N lines of CHANNEL (oldest first) and exits. Follow live with plexus tail.`

func logsCmd(e *env, args []string) error {
	sf, fs := e.sessionFlagSet("logs", logsUsage, 100)
	ch, err := e.one(fs, args, "CHANNEL")
	if err != nil {
		return err
	}
	p, err := e.printer(sf.colour)
	if err != nil {
		return err
	}
	body, err := sf.sessionBody(ch, false, time.Now())
	if err != nil {
		return err
	}
	path, err := e.createSession(body)
	if err != nil {
		return err
	}
	resp, err := e.request(e.ctx, "GET", path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &apiError{"GET", path, resp.StatusCode, errorText(b)}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the session: %w", err)
	}
	return p.flush()
}

// createSession creates a session and returns its path (the session URL
// the server advertises, taken relative to the URL this client uses, so a
// node whose -api-url names another host still works here).
func (e *env) createSession(body map[string]any) (string, error) {
	var out struct {
		URL string `json:"url"`
	}
	if err := e.call("POST", "/v3/sessions", body, &out); err != nil {
		if statusOf(err) == http.StatusUnprocessableEntity {
			return "", fmt.Errorf("no such channel %q", body["channel_id"])
		}
		return "", err
	}
	u, err := url.Parse(out.URL)
	if err != nil || u.Path == "" {
		return "", fmt.Errorf("POST /v3/sessions: unexpected session URL %q", out.URL)
	}
	return strings.TrimSuffix(e.base.Path, "/") + strings.TrimPrefix(u.RequestURI(), strings.TrimSuffix(e.base.Path, "/")), nil
}

const tailUsage = `  plexus tail CHANNEL [-n N] [-ps PROC] [-source TOKEN] [-filter EXPR]

Prints the newest N lines of CHANNEL, then follows it live until interrupted.
After a network error or a server restart it reconnects by itself and goes on
from the last line it printed: no line is lost or repeated while the server
still holds it.`

// tailCmd follows a channel over SSE. Each event carries its position
// (epoch:offset); after any failure the client reconnects with
// Last-Event-ID, creating a new session when the old one is gone.
func tailCmd(e *env, args []string) error {
	sf, fs := e.sessionFlagSet("tail", tailUsage, 100)
	ch, err := e.one(fs, args, "CHANNEL")
	if err != nil {
		return err
	}
	p, err := e.printer(sf.colour)
	if err != nil {
		return err
	}
	body, err := sf.sessionBody(ch, true, time.Now())
	if err != nil {
		return err
	}
	t := &tailer{e: e, body: body, p: p}
	return t.run()
}

type tailer struct {
	e      *env
	body   map[string]any
	p      *printer
	path   string // the session; "" until created
	lastID string // the last event id printed

	connected bool // the last attempt got the stream
	reported  bool // the outage was reported on stderr
}

// retryable reports whether a failure may pass by itself: the network, a
// restarting server (503, 502, 504) or an expired session (404).
func retryable(err error) bool {
	switch statusOf(err) {
	case 0, http.StatusNotFound, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	}
	return false
}

func (t *tailer) run() error {
	e := t.e
	backoff := 100 * time.Millisecond
	for {
		err := t.follow()
		if perr := t.p.flush(); perr != nil {
			return fmt.Errorf("writing: %w", perr) // stdout closed: stop
		}
		if e.ctx.Err() != nil {
			return e.ctx.Err()
		}
		if err != nil && !retryable(err) {
			return err
		}
		if statusOf(err) == http.StatusNotFound {
			t.path = "" // expired, or unknown after a restart: make a new one
		}
		if err == nil {
			err = errors.New("the server ended the stream")
		}
		if t.connected { // a new outage: start again with a short wait
			t.connected = false
			backoff = 100 * time.Millisecond
		}
		if !t.reported {
			t.reported = true
			t.p.flush()
			fmt.Fprintf(e.Stderr, "plexus tail: %v; reconnecting…\n", err)
		}
		select {
		case <-e.ctx.Done():
			return e.ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 3*time.Second)
	}
}

// follow creates the session if needed and reads its stream until it
// ends; nil means the stream ended without an error.
func (t *tailer) follow() error {
	e := t.e
	if t.path == "" {
		path, err := e.createSession(t.body)
		if err != nil {
			return err
		}
		t.path = path
	}
	h := http.Header{"Accept": {"text/event-stream"}}
	if t.lastID != "" {
		h.Set("Last-Event-ID", t.lastID)
	}
	resp, err := e.request(e.ctx, "GET", t.path, nil, h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &apiError{"GET", t.path, resp.StatusCode, errorText(b)}
	}
	if t.reported {
		t.reported = false
		fmt.Fprintln(e.Stderr, "plexus tail: reconnected")
	}
	t.connected = true
	err = readEvents(resp.Body, func(id, data string) {
		t.p.line(data)
		if id != "" {
			t.lastID = id
		}
	}, t.p.flush)
	return err
}

// readEvents parses a Server-Sent Events stream, calling event for each
// event and idle whenever no more input is buffered (to flush output).
func readEvents(r io.Reader, event func(id, data string), idle func() error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var id string
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if len(data) > 0 {
				event(id, strings.Join(data, "\n"))
			}
			id, data = "", data[:0]
			if br.Buffered() == 0 {
				if err := idle(); err != nil {
					return err
				}
			}
		case strings.HasPrefix(line, ":"): // comment (keep-alive)
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

// printer writes session lines, coloured by process on a terminal.
type printer struct {
	w      *bufio.Writer
	colour bool
}

func (e *env) printer(mode string) (*printer, error) {
	p := &printer{w: newWriter(e.Stdout)}
	switch mode {
	case "always":
		p.colour = true
	case "never":
	case "auto":
		f, ok := e.Stdout.(*os.File)
		p.colour = ok && isatty.IsTerminal(f.Fd()) && e.Getenv("NO_COLOR") == "" && e.Getenv("TERM") != "dumb"
	default:
		return nil, usagef("-color %q: want auto, always or never", mode)
	}
	return p, nil
}

// palette: the colours heroku logs uses for its process prefixes.
var palette = []string{"36", "33", "32", "35", "34", "91", "96", "93", "92", "95", "94"}

// line prints one session line: `TIME SOURCE[PROC]: MESSAGE`. With colour
// the `TIME SOURCE[PROC]:` prefix takes the colour of the process type
// (web for web.1), as `heroku logs --tail` does; Plexus's own notices
// (logplex[…]: Error L11 …) are red.
func (p *printer) line(s string) {
	if !p.colour {
		p.w.WriteString(s)
		p.w.WriteByte('\n')
		return
	}
	end := strings.Index(s, "]: ")
	open := strings.IndexByte(s, '[')
	if end < 0 || open < 0 || open > end {
		p.w.WriteString(s)
		p.w.WriteByte('\n')
		return
	}
	proc := s[open+1 : end]
	kind, _, _ := strings.Cut(proc, ".")
	c := palette[hash(kind)%uint32(len(palette))]
	if sp := strings.LastIndexByte(s[:open], ' '); sp >= 0 && s[sp+1:open] == "logplex" {
		c = "1;31"
	}
	fmt.Fprintf(p.w, "\x1b[%sm%s\x1b[0m%s\n", c, s[:end+2], s[end+2:])
}

func (p *printer) flush() error { return p.w.Flush() }

func newWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 32<<10) }

func hash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}
