// Command plexus runs a Plexus node: a Logplex-compatible syslog router.
// The same binary is its command-line client (package client).
//
//	plexus [flags]                          run a node (see plexus -h)
//	plexus channels|tokens|drains|creds …   manage a running node
//	plexus logs|tail CHANNEL                read a channel's log
//	plexus -version
//	plexus forward -url … FILE|GLOB|- …          ship log files to a channel
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
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/cmd/plexus/client"
	"github.com/plexus-router/plexus/cmd/plexus/forward"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// commandNames are the words `plexus WORD` understands besides the
// client's commands, for "did you mean" hints.
var commandNames = []string{"version", "help", "forward"}

func main() {
	if len(os.Args) > 1 {
		// Dispatch point: `plexus` with no argument or flags only runs a
		// node (below); a first argument that is a word is a command.
		switch cmd := os.Args[1]; cmd {
		case "forward":
			os.Exit(forward.Main(os.Args[2:], os.Stdin, os.Stderr))
		case "version", "-version", "--version":
			fmt.Println(versionLine())
			return
		case "help":
			_, _ = parseConfig([]string{"-h"}, getenv, os.Stdout)
			return
		default:
			if client.IsCommand(cmd) {
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				code := client.Main(ctx, os.Args[1:], client.IO{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
				stop()
				os.Exit(code)
			}
			if !strings.HasPrefix(cmd, "-") {
				fmt.Fprintf(os.Stderr, "plexus: unknown command %q%s (plexus help lists them; plexus with flags only runs a node)\n",
					cmd, client.Hint(cmd, append(client.Commands(), commandNames...)))
				os.Exit(2)
			}
		}
	}
	cfg, err := parseConfig(os.Args[1:], getenv, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "plexus: %v\n", err)
		os.Exit(2)
	}
	logger := newLogger(cfg, os.Stderr)
	if cfg.InsecureKey && weakKey(cfg.AuthKey) {
		logger.Warn().Msg("weak admin key accepted because of -insecure-key: anyone who guesses it controls this node")
	}

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
