package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

func TestConfigShaping(t *testing.T) {
	c, err := parseConfig([]string{"-channel-rate", "100", "-channel-burst", "500", "-internal-metrics-interval", "5s"}, env(map[string]string{
		"FIREHOSE_CHANNEL_IDS":        "a, b,",
		"FIREHOSE_FILTER_TOKENS":      "heroku",
		"INTERNAL_METRICS_CHANNEL_ID": "metrics",
		"PLEXUS_CHANNEL_BYTES_RATE":   "65536",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.defaultRateLimit(); got != (channels.RateLimit{MessagesPerS: 100, BytesPerS: 65536, Burst: 500}) {
		t.Errorf("default rate limit %+v", got)
	}
	if ids := splitList(c.FirehoseChannelIDs); !slices.Equal(ids, []string{"a", "b"}) || c.FirehoseFilterTokens != "heroku" {
		t.Errorf("firehose %q %q", ids, c.FirehoseFilterTokens)
	}
	if c.MetricsChannelID != "metrics" || c.MetricsChannelInterval != 5*time.Second {
		t.Errorf("metrics channel %q every %v", c.MetricsChannelID, c.MetricsChannelInterval)
	}
	if _, err := parseConfig([]string{"-channel-rate", "-1"}, env(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-channel-rate") {
		t.Errorf("negative rate: %v", err)
	}
	// Defaults: nothing limited, no firehose, no metrics channel.
	c, err = parseConfig(nil, env(nil), &bytes.Buffer{})
	if err != nil || !c.defaultRateLimit().IsZero() || c.FirehoseChannelIDs != "" || c.MetricsChannelID != "" || c.MetricsChannelInterval != time.Minute {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}
