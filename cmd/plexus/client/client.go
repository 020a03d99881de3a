// Package client is the command-line client built into the plexus binary:
// `plexus channels|tokens|drains|creds|logs|tail|tap …`. It talks to a running
// node over its HTTP API (the v3 routes, sessions and their SSE streams).
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DefaultURL is the API address used when neither -url nor PLEXUS_URL is set:
// the quick start's node.
const DefaultURL = "http://localhost:8001"

// command is one client command: `plexus <name> …`.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

var commands = []command{
	{"channels", "create, list, show and delete channels", channelsCmd},
	{"tokens", "add a token to a channel", tokensCmd},
	{"drains", "add, list, show and remove drains (with status and lag)", drainsCmd},
	{"creds", "create, list and revoke API credentials (admin key)", credsCmd},
	{"logs", "print a channel's recent log lines", logsCmd},
	{"tail", "follow a channel's log live (reconnects by itself)", tailCmd},
	{"tap", "show a live sample of dropped input (admin key)", tapCmd},
}

// Commands lists the client's command names, for the binary's dispatch and
// its "did you mean" hints.
func Commands() []string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return names
}

// IsCommand reports whether name is a client command.
func IsCommand(name string) bool {
	for _, c := range commands {
		if c.name == name {
			return true
		}
	}
	return false
}

// Usage writes the client commands' one-line summaries (for plexus -h).
func Usage(w io.Writer) {
	for _, c := range commands {
		fmt.Fprintf(w, "  plexus %-12s %s\n", c.name, c.summary)
	}
}

// IO is what a command reads and writes: tests pass buffers and a map.
type IO struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Main runs `plexus <args[0]> args[1:]…` and returns the exit code: 0 on
// success, 1 when the server refused or failed, 2 for a usage error.
func Main(ctx context.Context, args []string, io IO) int {
	if io.Getenv == nil {
		io.Getenv = os.Getenv
	}
	if len(args) == 0 || !IsCommand(args[0]) {
		name := ""
		if len(args) > 0 {
			name = args[0]
		}
		fmt.Fprintf(io.Stderr, "plexus: unknown command %q%s\n", name, hint(name, Commands()))
		return 2
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		e := &env{IO: io, ctx: ctx, prog: "plexus " + c.name}
		err := c.run(e, args[1:])
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			if ue.msg != "" {
				fmt.Fprintf(io.Stderr, "%s: %s\n", e.prog, ue.msg)
			}
			return 2
		case ctx.Err() != nil:
			return 0 // interrupted: tail ends this way
		default:
			fmt.Fprintf(io.Stderr, "%s: %v\n", e.prog, err)
			return 1
		}
	}
	return 2
}

// usageError is a mistake on the command line: one line, exit code 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// env is one command's run: its output, flags and server connection.
type env struct {
	IO
	ctx  context.Context
	prog string // "plexus channels"

	url, cred, ca, dataDir string
	json                   bool

	help func() // prints the command's usage to stdout

	base *url.URL
	auth string // Authorization header value
	hc   *http.Client
}

// flags returns a flag set with the connection flags every command takes.
// usage is the synopsis printed by -h.
func (e *env) flags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.url, "url", "", "the node's API base URL [PLEXUS_URL] (default "+DefaultURL+")")
	fs.StringVar(&e.cred, "cred", "", "credential ID:PASS, or the admin key [PLEXUS_CRED, then PLEXUS_AUTH_KEY, then <data-dir>/auth_key]")
	fs.StringVar(&e.dataDir, "data-dir", "", "a local node's data dir, to read its generated admin key [PLEXUS_DATA_DIR] (default ./data)")
	fs.StringVar(&e.ca, "ca", "", "PEM CA certificate to trust for an https URL [PLEXUS_CA]")
	fs.Usage = func() {} // the flag package calls it on every error
	e.help = func() {
		fmt.Fprintf(e.Stdout, "Usage:\n%s\n\nFlags:\n", usage)
		fs.SetOutput(e.Stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses args with flags and positional arguments in any order
// (`plexus logs app -n 5` and `plexus logs -n 5 app`); -h prints the usage
// to stdout and returns flag.ErrHelp.
func (e *env) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				e.help()
				return nil, err
			}
			return nil, usagef("%v%s (see %s -h)", err, flagHint(fs, err), e.prog)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagHint suggests a defined flag for "flag provided but not defined: -x".
func flagHint(fs *flag.FlagSet, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return ""
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	h := hint(strings.TrimPrefix(name, "-"), names)
	if !strings.Contains(h, "did you mean") {
		return ""
	}
	return strings.Replace(h, `"`, `"-`, 1)
}

// connect resolves the server URL and credentials from flags, then the
// environment, then a local node's data dir.
func (e *env) connect() error {
	raw := first(e.url, e.Getenv("PLEXUS_URL"), e.Getenv("PLEXUS_API_URL"), e.Getenv("LOGPLEX_API_ENDPOINT_URL"), DefaultURL)
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return usagef("server URL %q: want http://host:port or https://host:port (-url or PLEXUS_URL)", raw)
	}
	e.base = u
	cred := first(e.cred, e.Getenv("PLEXUS_CRED"), e.Getenv("PLEXUS_AUTH_KEY"), e.Getenv("LOGPLEX_AUTH_KEY"))
	if cred == "" {
		dir := first(e.dataDir, e.Getenv("PLEXUS_DATA_DIR"), "./data")
		if b, err := os.ReadFile(filepath.Join(dir, "auth_key")); err == nil {
			cred = strings.TrimSpace(string(b))
		}
	}
	if cred == "" {
		return usagef("no credentials: set PLEXUS_CRED=ID:PASS (from 'plexus creds create') or PLEXUS_AUTH_KEY=<admin key>, or pass -cred")
	}
	if id, pass, ok := strings.Cut(cred, ":"); ok {
		e.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+pass))
	} else {
		e.auth = "Basic " + cred // the admin key goes as is, as Logplex's clients send it
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if ca := first(e.ca, e.Getenv("PLEXUS_CA")); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("CA certificate %s: no PEM certificate in it", ca)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	e.hc = &http.Client{Transport: tr}
	return nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiError is a refusal by the server.
type apiError struct {
	method, path string
	status       int
	text         string
}

func (a *apiError) Error() string {
	switch a.status {
	case http.StatusUnauthorized:
		return fmt.Sprintf("%s %s: 401 Unauthorized: the server refused the credential (check PLEXUS_CRED or -cred)", a.method, a.path)
	case http.StatusForbidden:
		return fmt.Sprintf("%s %s: 403 Forbidden: the credential may not do this (the admin key may)", a.method, a.path)
	}
	msg := fmt.Sprintf("%s %s: %d %s", a.method, a.path, a.status, http.StatusText(a.status))
	if a.text != "" {
		msg += ": " + a.text
	}
	return msg
}

func statusOf(err error) int {
	var a *apiError
	if errors.As(err, &a) {
		return a.status
	}
	return 0
}

// call sends one request; in is marshalled as JSON (nil: no body); a 2xx
// answer is decoded into out (nil: ignored).
func (e *env) call(method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	resp, err := e.request(ctx, method, path, in, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &apiError{method, path, resp.StatusCode, errorText(b)}
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return nil
}

// request sends a request with the credential; the caller closes the body.
func (e *env) request(ctx context.Context, method, path string, in any, header http.Header) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base.String()+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", e.auth)
	req.Header.Set("User-Agent", "plexus-cli")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("cannot reach plexus at %s (set -url or PLEXUS_URL): %w", e.base, unwrapURLError(err))
	}
	return resp, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorText extracts a readable reason from an error body:
// {"error":"…"} or short plain text.
func errorText(b []byte) string {
	var v struct{ Error string }
	if json.Unmarshal(b, &v) == nil && v.Error != "" {
		return v.Error
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 || strings.ContainsAny(s, "<\n") {
		return ""
	}
	return s
}

// printJSON writes v indented (the -json output).
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// hint returns `; did you mean "x"?` for the closest of names, or "".
func hint(got string, names []string) string {
	if got == "" {
		return "; commands: " + strings.Join(names, ", ")
	}
	best, bestD := "", 3
	for _, n := range names {
		d := distance(got, n)
		if strings.HasPrefix(n, got) && len(got) >= 2 {
			d = 1
		}
		if d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		sorted := append([]string(nil), names...)
		sort.Strings(sorted)
		return "; one of: " + strings.Join(sorted, ", ")
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// Hint is hint for the binary's own dispatch.
func Hint(got string, names []string) string { return hint(got, names) }

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sub dispatches a command's subcommands (`plexus channels create …`).
func (e *env) sub(args []string, usage string, subs map[string]func([]string) error) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(e.Stderr, usage)
			return usageError{} // the usage says it all
		}
		fmt.Fprint(e.Stdout, usage)
		return flag.ErrHelp
	}
	f, ok := subs[args[0]]
	if !ok {
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		sort.Strings(names)
		return usagef("unknown subcommand %q%s", args[0], hint(args[0], names))
	}
	e.prog += " " + args[0]
	return f(args[1:])
}
