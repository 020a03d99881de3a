// Command plexus runs a Plexus node: a Logplex-compatible syslog router.
//
//	plexus [flags]               run a node (see plexus -h)
//	plexus creds create|list|revoke
//	plexus forward -url … FILE|GLOB|- …   ship log files to a channel
//
// The load tool is a separate command, cmd/plexus-bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/cmd/plexus/forward"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "creds":
			os.Exit(credsMain(os.Args[2:], os.Stdout, os.Stderr))
		case "forward":
			os.Exit(forward.Main(os.Args[2:], os.Stdin, os.Stderr))
		case "version", "-version", "--version":
			fmt.Println("plexus", version)
			return
		}
	}
	cfg, err := parseConfig(os.Args[1:], getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "plexus:", err)
		os.Exit(2)
	}
	logger := newLogger(cfg, os.Stderr)

	// The first SIGINT/SIGTERM starts a graceful shutdown; once it has
	// begun the handler is removed, so a second signal kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()

	n := &Node{Config: cfg, Logger: logger}
	if err := n.Open(ctx); err != nil {
		logger.Error().Err(err).Msg("plexus did not start")
		os.Exit(1)
	}
	failed := false
	if err := n.Run(ctx); err != nil {
		logger.Error().Err(err).Msg("plexus failed: shutting down")
		failed = true
	}
	if err := n.Close(context.Background()); err != nil {
		logger.Error().Err(err).Msg("shutdown")
		failed = true
	}
	if failed {
		os.Exit(1)
	}
}

func newLogger(cfg *Config, w io.Writer) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil || cfg.LogLevel == "" {
		level = zerolog.InfoLevel
	}
	console := cfg.LogFormat == "console"
	if cfg.LogFormat == "auto" {
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
