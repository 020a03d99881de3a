package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/router"
)

// Stream shaping: default rate limits, the firehose and the internal
// metrics channel.

func shapingFlags(c *Config, fs *flag.FlagSet, opts *[]option) {
	float := func(p *float64, name string, usage string, envs ...string) {
		fs.Float64Var(p, name, 0, usage)
		*opts = append(*opts, option{name, envs})
	}
	str := func(p *string, name, usage string, envs ...string) {
		fs.StringVar(p, name, "", usage)
		*opts = append(*opts, option{name, envs})
	}
	float(&c.ChannelRate, "channel-rate", "default input limit of a channel, in messages per second (0 = unlimited); a channel's own rate_limit (v3 API) wins", "PLEXUS_CHANNEL_RATE")
	float(&c.ChannelBytesRate, "channel-bytes-rate", "default input limit of a channel, in bytes per second (0 = unlimited)", "PLEXUS_CHANNEL_BYTES_RATE")
	float(&c.ChannelBurst, "channel-burst", "default size of a channel's message bucket: messages it may send at once after a quiet period (default: one second of -channel-rate)", "PLEXUS_CHANNEL_BURST")
	str(&c.FirehoseChannelIDs, "firehose-channel-ids", "comma-separated channels that receive a raw copy of every other channel's messages (one picked per message)", "PLEXUS_FIREHOSE_CHANNEL_IDS", "FIREHOSE_CHANNEL_IDS")
	str(&c.FirehoseFilterTokens, "firehose-filter-tokens", "comma-separated token names whose messages go to the firehose (empty: all)", "PLEXUS_FIREHOSE_FILTER_TOKENS", "FIREHOSE_FILTER_TOKENS")
	str(&c.MetricsChannelID, "internal-metrics-channel-id", "channel that receives this node's counters as log lines every -internal-metrics-interval", "PLEXUS_INTERNAL_METRICS_CHANNEL_ID", "INTERNAL_METRICS_CHANNEL_ID")
	fs.DurationVar(&c.MetricsChannelInterval, "internal-metrics-interval", time.Minute, "how often the internal metrics channel receives its lines")
	*opts = append(*opts, option{"internal-metrics-interval", []string{"PLEXUS_INTERNAL_METRICS_INTERVAL"}})
}

func (c *Config) validateShaping() error {
	if err := c.defaultRateLimit().Validate(); err != nil {
		return fmt.Errorf("-channel-rate, -channel-bytes-rate, -channel-burst: %w", err)
	}
	if c.MetricsChannelInterval <= 0 {
		return fmt.Errorf("-internal-metrics-interval must be positive")
	}
	return nil
}

func (c *Config) defaultRateLimit() channels.RateLimit {
	return channels.RateLimit{MessagesPerS: c.ChannelRate, BytesPerS: c.ChannelBytesRate, Burst: c.ChannelBurst}
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// shaping runs the background parts of stream shaping: the L16 notices
// and the internal metrics channel.
type shaping struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startShaping starts them; stop ends them (the notices write their last
// counts first).
func startShaping(n *Node, rt *router.Router) *shaping {
	ctx, cancel := context.WithCancel(context.Background())
	sh := &shaping{cancel: cancel}
	sh.wg.Add(1)
	go func() {
		defer sh.wg.Done()
		rt.RunNotices(ctx, router.DefaultNoticeInterval)
	}()
	if id := n.Config.MetricsChannelID; id != "" {
		logger := n.Logger.With().Str("component", "metrics_channel").Str("channel_id", id).Logger()
		mc := &router.MetricsChannel{
			ChannelID: id,
			Node:      n.Config.NodeID,
			Interval:  n.Config.MetricsChannelInterval,
			Gatherer:  n.reg,
			Log:       n.be.log,
			OnError:   func(err error) { logger.Warn().Err(err).Msg("internal metrics channel") },
		}
		sh.wg.Add(1)
		go func() {
			defer sh.wg.Done()
			mc.Run(ctx)
		}()
	}
	return sh
}

func (sh *shaping) stop() {
	if sh == nil {
		return
	}
	sh.cancel()
	sh.wg.Wait()
}

// configureRouter applies the shaping settings to the router.
func configureRouter(cfg *Config, rt *router.Router, n *Node, logger zerolog.Logger) {
	rt.SetDefaultRateLimit(cfg.defaultRateLimit())
	if ids := splitList(cfg.FirehoseChannelIDs); len(ids) > 0 {
		rt.SetFirehose(ids, splitList(cfg.FirehoseFilterTokens), n.reg)
		logger.Info().Strs("channel_ids", ids).Strs("filter_tokens", splitList(cfg.FirehoseFilterTokens)).Msg("firehose on")
	}
	n.reg.MustRegister(rt.Collector())
}
