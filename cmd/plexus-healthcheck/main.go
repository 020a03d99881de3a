// Command plexus-healthcheck asks the Plexus node in the same container
// whether it is healthy: the container image's HEALTHCHECK runs it, since
// the image has no shell, curl or wget.
//
//	plexus-healthcheck [-addr ADDR] [-path PATH] [-timeout D]
//
// It GETs http://ADDR/PATH and exits 0 on 200, 1 otherwise, printing the
// status and the start of the body (docker inspect and podman healthcheck
// run show it). ADDR defaults to PLEXUS_API_ADDR (what the node listens on,
// default :8001) with an unspecified host replaced by loopback.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plexus-healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "the node's API address (default: PLEXUS_API_ADDR, else :8001)")
	path := fs.String("path", "/v3/healthcheck", "the health endpoint")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" {
		*addr = getenv("PLEXUS_API_ADDR")
	}
	if *addr == "" {
		*addr = ":8001"
	}
	target, err := dialAddr(*addr)
	if err != nil {
		fmt.Fprintln(stderr, "plexus-healthcheck:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	url := "http://" + target + *path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "plexus-healthcheck:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stdout, "unhealthy:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	fmt.Fprintf(stdout, "GET %s: %s %s\n", url, resp.Status, body)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// dialAddr turns a listen address into one to dial: an empty or
// unspecified host (":8001", "0.0.0.0:8001", "[::]:8001") becomes loopback.
func dialAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("api address %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}
