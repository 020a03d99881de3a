package forward

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Config configures a Forwarder. ParseArgs fills it from the command line.
type Config struct {
	URL         *url.URL // POST target, with the token as user info
	Paths       []string // files, globs, or "-" for standard input
	State       string   // state file ("" : no state)
	FromEnd     bool     // a file found at the first start without state is read from its end
	Hostname    string
	App         string // APP-NAME ("" : the file's base name)
	ProcID      string
	InputFormat string // raw, rfc5424, rfc3164 or auto
	BatchLines  int
	BatchBytes  int // input bytes per batch
	BatchAge    time.Duration
	MaxLine     int // longer lines are split
	Gzip        bool
	Drop        bool // drop batches when the sender is behind (counted)
	Queue       int  // sealed batches waiting per file
	Poll        time.Duration
	NoInotify   bool
	RotateWait  time.Duration // a renamed or deleted file is read until quiet this long
	Progress    time.Duration
	MetricsAddr string
	Grace       time.Duration // SIGTERM: how long to keep sending
	Timeout     time.Duration // one request
	MaxBackoff  time.Duration
	SaveEvery   time.Duration
}

// ParseArgs reads the forward subcommand's flags and arguments.
func ParseArgs(args []string, stderr io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("plexus forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: plexus forward -url http://token:t.…@host:8601/logs [flags] FILE|GLOB|- …")
		fs.PrintDefaults()
	}
	host, _ := os.Hostname()
	var rawURL, from string
	fs.StringVar(&rawURL, "url", os.Getenv("PLEXUS_FORWARD_URL"), "Plexus log input URL with the token as user info (env PLEXUS_FORWARD_URL)")
	fs.StringVar(&c.State, "state", defaultStatePath(), "state file: how far each file was acknowledged (\"\": none)")
	fs.StringVar(&from, "from", "beginning", "where to start in files found at the first start without state: beginning or end")
	fs.StringVar(&c.Hostname, "hostname", host, "HOSTNAME of the messages")
	fs.StringVar(&c.App, "app", "", "APP-NAME of the messages (default: the file's base name; stdin: forward)")
	fs.StringVar(&c.ProcID, "procid", "-", "PROCID of the messages")
	fs.StringVar(&c.InputFormat, "input-format", "raw", "raw (every line becomes a message), rfc5424, rfc3164 or auto (lines in that syslog format pass through as they are)")
	fs.IntVar(&c.BatchLines, "batch-lines", 4000, "lines per batch at most")
	fs.IntVar(&c.BatchBytes, "batch-bytes", 1<<20, "input bytes per batch at most (about; keep under the server's -max-body)")
	fs.DurationVar(&c.BatchAge, "batch-age", 200*time.Millisecond, "a batch waits at most this long for more lines")
	fs.IntVar(&c.MaxLine, "max-line", 8192, "longer lines are split into pieces of this many bytes (counted)")
	gz := &gzipFlag{v: "auto"}
	fs.Var(gz, "gzip", "gzip the request bodies: true, false, or auto (yes unless the server is on a loopback address)")
	fs.BoolVar(&c.Drop, "drop", false, "drop batches instead of pausing reading when sending is behind (every drop is counted)")
	fs.IntVar(&c.Queue, "queue", 4, "sealed batches waiting per file")
	fs.DurationVar(&c.Poll, "poll", 250*time.Millisecond, "how often files are checked without an inotify event")
	fs.BoolVar(&c.NoInotify, "no-inotify", false, "poll only")
	fs.DurationVar(&c.RotateWait, "rotate-wait", 5*time.Second, "a renamed or deleted file is read until it has not grown for this long")
	fs.DurationVar(&c.Progress, "progress", 10*time.Second, "interval of the progress line on stderr (0: none)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics")
	fs.DurationVar(&c.Grace, "grace", 5*time.Second, "on SIGTERM, how long to keep sending what was read")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.DurationVar(&c.MaxBackoff, "max-backoff", 30*time.Second, "longest wait between retries")
	fs.DurationVar(&c.SaveEvery, "save-every", time.Second, "how often the state file is written when something was acknowledged")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.Paths = fs.Args()
	switch {
	case rawURL == "":
		return nil, errors.New("-url is required")
	case len(c.Paths) == 0:
		return nil, errors.New("no FILE, GLOB or - given")
	case c.BatchLines < 1 || c.BatchBytes < 1 || c.MaxLine < 16 || c.Queue < 1 || c.Poll <= 0:
		return nil, errors.New("-batch-lines, -batch-bytes, -queue and -poll must be positive, -max-line at least 16")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http(s)://token:t.…@host:port/logs", redactURL(rawURL))
	}
	if u.Path == "" {
		u.Path = "/logs"
	}
	c.URL = u
	c.Gzip = gz.v == "true" || gz.v == "auto" && !isLoopback(u.Hostname())
	switch from {
	case "beginning":
	case "end":
		c.FromEnd = true
	default:
		return nil, fmt.Errorf("-from %q: want beginning or end", from)
	}
	switch c.InputFormat {
	case "raw", "rfc5424", "rfc3164", "auto":
	default:
		return nil, fmt.Errorf("-input-format %q: want raw, rfc5424, rfc3164 or auto", c.InputFormat)
	}
	c.Hostname = syslogField(c.Hostname, 255)
	c.ProcID = syslogField(c.ProcID, 128)
	if c.App != "" {
		c.App = syslogField(c.App, 48)
	}
	return c, nil
}

func defaultStatePath() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "plexus", "forward.json")
}

// syslogField makes s a valid RFC 5424 header field: printable ASCII
// without spaces, at most n bytes, "-" when empty.
func syslogField(s string, n int) string {
	b := []byte(s)
	out := b[:0]
	for _, c := range b {
		if c > 32 && c < 127 {
			out = append(out, c)
		}
	}
	if len(out) > n {
		out = out[:n]
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

// redactURL hides a password in a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// gzipFlag is -gzip: true, false or auto (gzip unless the server is on
// a loopback address, where compressing costs CPU and saves nothing).
type gzipFlag struct{ v string }

func (g *gzipFlag) String() string   { return g.v }
func (g *gzipFlag) IsBoolFlag() bool { return true }
func (g *gzipFlag) Set(s string) error {
	switch s {
	case "true", "false", "auto":
		g.v = s
		return nil
	}
	return fmt.Errorf("want true, false or auto")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
