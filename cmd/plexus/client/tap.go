package client

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

const tapUsage = `  plexus tap [-json]

Prints a live sample of the input the node drops (unknown token, malformed,
over a rate limit, log full) until interrupted: time, reason, listener, peer
and the line, its tokens redacted and cut to 512 bytes. The sample skips
lines rather than slow the input down. Needs the admin key (PLEXUS_AUTH_KEY).`

// droppedLine is one object of GET /v3/dropped.
type droppedLine struct {
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason"`
	Listener   string    `json:"listener"`
	RemoteAddr string    `json:"remote_addr"`
	Line       string    `json:"line"`
	Count      int       `json:"count"`
	Skipped    int64     `json:"skipped"`
}

func tapCmd(e *env, args []string) error {
	fs := e.flags("tap", tapUsage)
	raw := fs.Bool("json", false, "print the server's JSON objects as they come")
	if err := e.none(fs, args); err != nil {
		return err
	}
	const path = "/v3/dropped"
	resp, err := e.request(e.ctx, "GET", path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("GET %s: 401 Unauthorized: tapping dropped input needs the admin key (PLEXUS_AUTH_KEY)", path)
		}
		return &apiError{"GET", path, resp.StatusCode, errorText(b)}
	}
	w := newWriter(e.Stdout)
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 1 {
			if *raw {
				w.Write(line)
			} else {
				var d droppedLine
				if jerr := json.Unmarshal(line, &d); jerr != nil {
					return fmt.Errorf("GET %s: unexpected answer: %w", path, jerr)
				}
				printDropped(w, d)
			}
		}
		if br.Buffered() == 0 {
			if ferr := w.Flush(); ferr != nil {
				return fmt.Errorf("writing: %w", ferr)
			}
		}
		if err == io.EOF {
			return fmt.Errorf("GET %s: the server ended the stream", path)
		}
		if err != nil {
			if e.ctx.Err() != nil {
				return e.ctx.Err()
			}
			return fmt.Errorf("GET %s: %w", path, err)
		}
	}
}

// printDropped prints `TIME REASON LISTENER PEER LINE`.
func printDropped(w io.Writer, d droppedLine) {
	if d.Skipped > 0 {
		fmt.Fprintf(w, "… %d dropped lines not shown (the sample skips lines while the terminal catches up)\n", d.Skipped)
		return
	}
	peer := d.RemoteAddr
	if peer == "" {
		peer = "-"
	}
	count := ""
	if d.Count > 1 {
		count = fmt.Sprintf(" (%d messages)", d.Count)
	}
	line := d.Line
	if line == "" {
		line = "-"
	}
	fmt.Fprintf(w, "%s %s %s %s%s %s\n", d.Time.Local().Format(time.RFC3339), d.Reason, d.Listener, peer, count, line)
}
