package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// httpClient has a timeout so a hung server fails the test instead of
// hanging it. Streaming reads use streamClient.
var httpClient = &http.Client{Timeout: 15 * time.Second}

// streamClient has no overall timeout: tail sessions stay open; tests
// bound them with contexts.
var streamClient = &http.Client{}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r Response) String() string { return fmt.Sprintf("%d %q", r.Status, r.Body) }

// JSON decodes the body into v (numbers as json.Number), failing the test
// on invalid JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("response body is not JSON (%v): %s", err, r)
	}
}

// Auth values for the Authorization header.
func adminAuth(s *Server) string { return "Basic " + s.AuthKey }
func credAuth(id, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+pass))
}
func tokenAuth(token string) string { return credAuth("token", token) }

// do sends a request with an optional JSON (or raw) body and reads the answer.
func do(t testing.TB, method, rawURL, auth string, body any, header ...string) Response {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal %T: %v", body, err)
		}
		rd = bytes.NewReader(j)
		ctype = "application/json"
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, rawURL, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, rawURL, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// API calls the management API with the admin key.
func (s *Server) API(t testing.TB, method, path string, body any) Response {
	t.Helper()
	return do(t, method, "http://"+s.Addrs.API+path, adminAuth(s), body)
}

// mustStatus fails the test unless r has the wanted status.
func mustStatus(t testing.TB, what string, r Response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d; body %q", what, r.Status, want, r.Body)
	}
}

// Channel is a channel created through the legacy API.
type Channel struct {
	ID     string
	Tokens map[string]string // name → t.<uuid>
}

// createChannel does POST /channels {"name","tokens"} and returns the id and tokens.
func (s *Server) createChannel(t testing.TB, name string, tokens ...string) Channel {
	t.Helper()
	if tokens == nil {
		tokens = []string{}
	}
	r := s.API(t, "POST", "/channels", map[string]any{"name": name, "tokens": tokens})
	mustStatus(t, "POST /channels", r, http.StatusCreated)
	return parseChannel(t, r, len(tokens))
}

func parseChannel(t testing.TB, r Response, ntokens int) Channel {
	t.Helper()
	var v struct {
		ChannelID json.Number     `json:"channel_id"`
		Tokens    json.RawMessage `json:"tokens"`
	}
	r.JSON(t, &v)
	if _, err := strconv.ParseUint(v.ChannelID.String(), 10, 64); err != nil {
		t.Fatalf("channel_id %q is not a decimal integer: %s", v.ChannelID, r)
	}
	ch := Channel{ID: v.ChannelID.String(), Tokens: map[string]string{}}
	if ntokens > 0 {
		if err := json.Unmarshal(v.Tokens, &ch.Tokens); err != nil {
			t.Fatalf("tokens is not an object of name → token: %s", r)
		}
	}
	if len(ch.Tokens) != ntokens {
		t.Fatalf("got %d tokens, want %d: %s", len(ch.Tokens), ntokens, r)
	}
	return ch
}

// frame returns msg octet-counted: "LEN msg".
func frame(msg string) string { return strconv.Itoa(len(msg)) + " " + msg }

// postLogs POSTs octet-counted frames to /logs with the given Authorization
// and returns the answer.
func (s *Server) postLogs(t testing.TB, auth string, msgs ...string) Response {
	t.Helper()
	var body strings.Builder
	for _, m := range msgs {
		body.WriteString(frame(m))
	}
	return do(t, "POST", "http://"+s.Addrs.Logs+"/logs", auth, body.String(),
		"Content-Type", "application/logplex-1",
		"Logplex-Msg-Count", strconv.Itoa(len(msgs)))
}

// mustPostLogs posts messages with token auth and requires 204.
func (s *Server) mustPostLogs(t testing.TB, token string, msgs ...string) {
	t.Helper()
	r := s.postLogs(t, tokenAuth(token), msgs...)
	mustStatus(t, "POST /logs", r, http.StatusNoContent)
}

// newSession does POST /v2/sessions with req and returns the session URL
// rewritten to the server's real API address (the advertised base URL may
// name another host or port; the path is what identifies the session).
func (s *Server) newSession(t testing.TB, req map[string]any) string {
	t.Helper()
	r := s.API(t, "POST", "/v2/sessions", req)
	mustStatus(t, "POST /v2/sessions", r, http.StatusCreated)
	var v struct {
		URL string `json:"url"`
	}
	r.JSON(t, &v)
	return s.sessionURL(t, v.URL)
}

func (s *Server) sessionURL(t testing.TB, advertised string) string {
	t.Helper()
	u, err := url.Parse(advertised)
	if err != nil || !strings.HasPrefix(u.Path, "/sessions/") || len(strings.TrimPrefix(u.Path, "/sessions/")) != 36 {
		t.Fatalf("session url %q is not <base>/sessions/<uuid>", advertised)
	}
	return "http://" + s.Addrs.API + u.Path
}

// history creates a non-tailing session for channel and returns its body.
func (s *Server) history(t testing.TB, channelID string, num int) string {
	t.Helper()
	u := s.newSession(t, map[string]any{"channel_id": channelID, "num": strconv.Itoa(num)})
	r := do(t, "GET", u, "", nil)
	mustStatus(t, "GET session", r, http.StatusOK)
	return string(r.Body)
}

// historyLines is history split into lines (each without its "\n").
func (s *Server) historyLines(t testing.TB, channelID string, num int) []string {
	t.Helper()
	return splitLines(s.history(t, channelID, num))
}

func splitLines(body string) []string {
	if body == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(body, "\n"), "\n")
}

// waitHistory polls the channel's history until it holds at least n lines
// and returns them.
func (s *Server) waitHistory(t testing.TB, channelID string, n int, timeout time.Duration) []string {
	t.Helper()
	var lines []string
	waitFor(t, timeout, fmt.Sprintf("%d lines in channel %s", n, channelID), func() (bool, string) {
		lines = s.historyLines(t, channelID, 1500)
		return len(lines) >= n, fmt.Sprintf("%d lines: %q", len(lines), tailLines(lines, 5))
	})
	return lines
}

func tailLines(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// lineReader reads a streaming response line by line on a goroutine, so
// tests can wait for lines with a deadline.
type lineReader struct {
	resp  *http.Response
	lines chan string
	errc  chan error
}

func newLineReader(resp *http.Response) *lineReader {
	lr := &lineReader{resp: resp, lines: make(chan string, 1024), errc: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		lr.errc <- err
		close(lr.lines)
	}()
	return lr
}

// next returns the next line, or fails the test after timeout. ok is false
// at the end of the stream.
func (lr *lineReader) next(t testing.TB, timeout time.Duration) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-lr.lines:
		return l, ok
	case <-time.After(timeout):
		t.Fatalf("no line within %v", timeout)
		return "", false
	}
}

func (lr *lineReader) Close() { lr.resp.Body.Close() }

// openStream GETs a session URL for streaming with optional headers.
func openStream(t testing.TB, rawURL string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := streamClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: status %d: %q", rawURL, resp.StatusCode, b)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
