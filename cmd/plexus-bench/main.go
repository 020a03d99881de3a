// Command plexus-bench is Plexus' load tool. It sends N syslog messages over
// TCP, UDP or HTTP (logplex-1 batches) with K tokens over P connections,
// reads them back — through tail sessions, or through a TCP or HTTP sink it
// runs itself (a drain endpoint, or the forwarding target of a peer such as
// rsyslog) — and reports msgs/s, MB/s, ingest→read latency (p50/p99) and
// loss.
//
//	plexus-bench -api http://127.0.0.1:8001 -key KEY -proto tcp -target 127.0.0.1:6001 -n 1000000 -tokens 4 -conns 4
//	plexus-bench ... -read sink -drain syslog      # through a syslog drain to the tool's sink
//	plexus-bench -no-api -target 127.0.0.1:5140 -read sink -sink 127.0.0.1:5141   # a peer (rsyslog) forwarding to the sink
//
// Every message carries "bseq=<16 hex> bts=<19 digits>": its sequence number
// and send time, found again wherever it comes out, whatever the framing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"
)

type options struct {
	api, tailAPI, key, proto, target, logsURL string
	n, tokens, conns, size, batch             int
	rate                                      int
	read, drain, sink, drainURL               string
	drainFilter                               string
	noAPI, keep, jsonOut                      bool
	idle                                      time.Duration
	appName                                   string
}

func main() {
	var o options
	flag.StringVar(&o.api, "api", envOr("PLEXUS_API_URL", "http://127.0.0.1:8001"), "Plexus API base URL (setup, sessions)")
	flag.StringVar(&o.tailAPI, "tail-api", "", "API base URL of the node serving the tail sessions (default -api): ingest on one cluster node, tail on another")
	flag.StringVar(&o.key, "key", os.Getenv("PLEXUS_AUTH_KEY"), "admin key [PLEXUS_AUTH_KEY]")
	flag.StringVar(&o.proto, "proto", "tcp", "how to send: tcp, udp or http")
	flag.StringVar(&o.target, "target", "127.0.0.1:6001", "syslog address for tcp/udp")
	flag.StringVar(&o.logsURL, "logs-url", "http://127.0.0.1:8601/logs", "HTTP input URL for -proto http")
	flag.IntVar(&o.n, "n", 100000, "messages to send")
	flag.IntVar(&o.tokens, "tokens", 4, "channels (one token each) to spread messages over")
	flag.IntVar(&o.conns, "conns", 4, "sending connections")
	flag.IntVar(&o.size, "size", 200, "message size in bytes (RFC 5424, without framing)")
	flag.IntVar(&o.batch, "batch", 256, "messages per write (tcp) or per POST (http)")
	flag.IntVar(&o.rate, "rate", 0, "total msgs/s to send (0 = as fast as possible)")
	flag.StringVar(&o.read, "read", "tail", "how to read back: tail (sessions), sink (-sink listener), none")
	flag.StringVar(&o.drain, "drain", "none", "add a drain per channel pointing at the sink: none, syslog or http")
	flag.StringVar(&o.drainFilter, "drain-filter", "", "filter expression for the drains created (e.g. 'severity <= 6': every bench message passes, the cost is measured)")
	flag.StringVar(&o.drainURL, "drain-url", "", "drain URL to add to every channel instead of the sink (e.g. a dead endpoint: syslog://127.0.0.1:9)")
	flag.StringVar(&o.sink, "sink", "127.0.0.1:0", "listen address of the sink (-read sink)")
	flag.BoolVar(&o.noAPI, "no-api", false, "no Plexus setup: send to -target as is (peer comparison)")
	flag.BoolVar(&o.keep, "keep", false, "keep the channels created (default: delete them at the end)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "give up waiting when nothing arrives for this long")
	flag.StringVar(&o.appName, "app", "bench", "APP-NAME when -no-api")
	cpuProfile := flag.String("cpuprofile", "", "write the load tool's own CPU profile to this file")
	flag.Parse()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "plexus-bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := runBench(ctx, o)
	pprof.StopCPUProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "plexus-bench:", err)
		os.Exit(1)
	}
	if o.jsonOut {
		json.NewEncoder(os.Stdout).Encode(res)
	} else {
		res.print(os.Stdout)
	}
	if res.Lost > 0 {
		os.Exit(3)
	}
}

// waitChannels waits until the node behind c knows every channel.
func waitChannels(ctx context.Context, c *client, ids []string) error {
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for c.do(ctx, "GET", "/v3/channels/"+id, nil, nil) != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("channel %s did not reach %s", id, c.base)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// result is what one run measured.
type result struct {
	Proto       string  `json:"proto"`
	N           int     `json:"n"`
	Conns       int     `json:"conns"`
	Tokens      int     `json:"tokens"`
	Size        int     `json:"size"`
	Read        string  `json:"read"`
	Drain       string  `json:"drain"`
	Offered     int     `json:"offered,omitempty"` // -rate, msgs/s`
	SendSeconds float64 `json:"send_seconds"`
	SendRate    float64 `json:"send_msgs_per_s"`
	Received    int64   `json:"received"`
	Duplicates  int64   `json:"duplicates"`
	Reported    int64   `json:"reported_dropped"` // announced in band by L10/L11 notices
	Lost        int64   `json:"lost"`             // neither received nor announced
	E2ESeconds  float64 `json:"e2e_seconds"`
	E2ERate     float64 `json:"e2e_msgs_per_s"`
	E2EMBps     float64 `json:"e2e_mb_per_s"`
	P50ms       float64 `json:"latency_p50_ms"`
	P99ms       float64 `json:"latency_p99_ms"`
	MaxMs       float64 `json:"latency_max_ms"`
	ServerRSSMB float64 `json:"server_rss_mb,omitempty"`
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "proto=%s n=%d conns=%d tokens=%d size=%d read=%s drain=%s\n", r.Proto, r.N, r.Conns, r.Tokens, r.Size, r.Read, r.Drain)
	fmt.Fprintf(w, "sent      %d in %.3fs: %.0f msgs/s\n", r.N, r.SendSeconds, r.SendRate)
	if r.Read != "none" {
		fmt.Fprintf(w, "received  %d in %.3fs end to end: %.0f msgs/s, %.1f MB/s\n", r.Received, r.E2ESeconds, r.E2ERate, r.E2EMBps)
		fmt.Fprintf(w, "missing   %d reported in band (L10/L11), %d lost silently; %d duplicates\n", r.Reported, r.Lost, r.Duplicates)
		fmt.Fprintf(w, "latency   p50 %.2f ms  p99 %.2f ms  max %.2f ms (send → read back)\n", r.P50ms, r.P99ms, r.MaxMs)
	}
	if r.ServerRSSMB > 0 {
		fmt.Fprintf(w, "server    RSS %.1f MB\n", r.ServerRSSMB)
	}
}

func runBench(ctx context.Context, o options) (*result, error) {
	if o.n <= 0 || o.conns <= 0 || o.tokens <= 0 {
		return nil, errors.New("-n, -conns and -tokens must be positive")
	}
	if o.noAPI {
		o.tokens = 1
	}
	c := newCollector(o.n)
	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()

	// The sink, when used, must exist before drains point at it.
	var sinkAddr string
	if o.read == "sink" {
		addr, stopSink, err := startSink(o.sink, o.drain == "http", c)
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, stopSink)
		sinkAddr = addr
		fmt.Fprintf(os.Stderr, "sink listening on %s\n", addr)
	}

	api := &client{base: strings.TrimRight(o.api, "/"), key: o.key}
	tokens := []string{o.appName}
	var chans []string
	if !o.noAPI {
		run := strconv.FormatInt(time.Now().UnixNano(), 36)
		tokens = tokens[:0]
		for i := 0; i < o.tokens; i++ {
			id := fmt.Sprintf("bench-%s-%d", run, i)
			var doc struct {
				Tokens map[string]string `json:"tokens"`
			}
			if err := api.do(ctx, "PUT", "/v3/channels/"+id, map[string]any{"tokens": []string{"app"}}, &doc); err != nil {
				return nil, fmt.Errorf("create channel: %w", err)
			}
			chans = append(chans, id)
			tokens = append(tokens, doc.Tokens["app"])
			switch {
			case o.drainURL != "":
				if err := api.do(ctx, "POST", "/v3/channels/"+id+"/drains", map[string]any{"url": o.drainURL}, nil); err != nil {
					return nil, fmt.Errorf("create drain: %w", err)
				}
			case o.drain == "syslog" || o.drain == "http":
				scheme := map[string]string{"syslog": "syslog://", "http": "http://"}[o.drain]
				path := map[string]string{"syslog": "", "http": "/logs"}[o.drain]
				body := map[string]any{"url": scheme + sinkAddr + path}
				if o.drainFilter != "" {
					body["filter"] = o.drainFilter
				}
				if err := api.do(ctx, "POST", "/v3/channels/"+id+"/drains", body, nil); err != nil {
					return nil, fmt.Errorf("create drain: %w", err)
				}
			}
		}
		if !o.keep {
			cleanup = append(cleanup, func() {
				for _, id := range chans {
					api.do(context.Background(), "DELETE", "/v3/channels/"+id, nil, nil)
				}
			})
		}
		if o.read == "tail" {
			tails := api
			if o.tailAPI != "" {
				tails = &client{base: strings.TrimRight(o.tailAPI, "/"), key: o.key}
				// the other node learns about the new channels within a second
				if err := waitChannels(ctx, tails, chans); err != nil {
					return nil, err
				}
			}
			tctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			cleanup = append(cleanup, func() { cancel(); wg.Wait() })
			for _, id := range chans {
				body, err := tails.openTail(tctx, id)
				if err != nil {
					return nil, fmt.Errorf("tail: %w", err)
				}
				wg.Add(1)
				go func() { defer wg.Done(); defer body.Close(); c.readStream(body) }()
			}
		}
	}

	start := time.Now()
	c.start.Store(start.UnixNano())
	if err := send(ctx, o, tokens); err != nil {
		return nil, err
	}
	sent := time.Since(start)

	res := &result{Proto: o.proto, N: o.n, Conns: o.conns, Tokens: o.tokens, Size: o.size, Read: o.read, Drain: o.drain, Offered: o.rate,
		SendSeconds: sent.Seconds(), SendRate: float64(o.n) / sent.Seconds()}
	if o.read != "none" {
		c.wait(ctx, o.idle)
		res.Received = c.received.Load()
		res.Duplicates = c.dups.Load()
		res.Reported = c.reported.Load()
		res.Lost = max(0, int64(o.n)-res.Received-res.Reported)
		end := time.Unix(0, c.last.Load())
		if res.Received > 0 {
			res.E2ESeconds = end.Sub(start).Seconds()
			res.E2ERate = float64(res.Received) / res.E2ESeconds
			res.E2EMBps = float64(res.Received) * float64(o.size) / res.E2ESeconds / 1e6
		}
		res.P50ms, res.P99ms, res.MaxMs = c.latencies()
	}
	if !o.noAPI {
		res.ServerRSSMB = api.rssMB(ctx)
	}
	return res, nil
}
