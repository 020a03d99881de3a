package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != ":8001" || c.LogsAddr != ":8601" || c.SyslogAddr != ":6001" || c.SyslogUDPAddr != ":6001" ||
		c.DataDir != "./data" || c.History != 1500 || c.MaxFrame != 10240 || c.MaxDrains != 6 ||
		c.SessionTTL != 360*time.Second || c.LegacyAPIStatus != "normal" || c.RedisURL != "" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigEnvAliasesAndFlags(t *testing.T) {
	c, err := parseConfig([]string{"-history", "20"}, env(map[string]string{
		"LOGPLEX_AUTH_KEY":           "legacy-key-0123456789",
		"LOGPLEX_CONFIG_REDIS_URL":   "redis://r:6379",
		"LOGPLEX_SHARD_URLS":         "redis://a,redis://b",
		"LOGPLEX_API_ENDPOINT_URL":   "http://logs.example:8001",
		"LEGACY_API_STATUS":          "read_only",
		"DENY_TAIL_SESSIONS":         "true",
		"PLEXUS_HISTORY":             "99", // the flag wins over the environment
		"PLEXUS_DRAIN_RETENTION_AGE": "30m",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthKey != "legacy-key-0123456789" || c.RedisURL != "redis://r:6379" || c.ShardURLs != "redis://a,redis://b" ||
		c.APIURL != "http://logs.example:8001" || c.LegacyAPIStatus != "read_only" || !c.DenyTailSessions ||
		c.History != 20 || c.DrainRetentionAge != 30*time.Minute {
		t.Errorf("config: %+v", c)
	}
	// PLEXUS_* wins over the Logplex alias when both are set.
	c, err = parseConfig(nil, env(map[string]string{"PLEXUS_AUTH_KEY": "new-key-0123456789", "LOGPLEX_AUTH_KEY": "old-key-0123456789"}), &bytes.Buffer{})
	if err != nil || c.AuthKey != "new-key-0123456789" {
		t.Errorf("auth key %q, %v; want PLEXUS_AUTH_KEY's", c.AuthKey, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"-api-status", "sleepy"}, want: "api status"},
		{env: map[string]string{"LEGACY_API_STATUS": "off"}, want: "api status"},
		{args: []string{"-history", "0"}, want: "-history"},
		{args: []string{"-max-frame", "10"}, want: "-max-frame"},
		{args: []string{"-tls-cert", "c.pem"}, want: "-tls-cert and -tls-key"},
		{env: map[string]string{"PLEXUS_HISTORY": "many"}, want: "PLEXUS_HISTORY"},
		{args: []string{"extra"}, want: "unexpected argument"},
		{args: []string{"-no-such-flag"}, want: "not defined"},
	} {
		_, err := parseConfig(tc.args, env(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q, %v) = %v, want an error about %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestUsageListsEnvironment(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"-auth-key [PLEXUS_AUTH_KEY, LOGPLEX_AUTH_KEY]", "-redis-url [PLEXUS_REDIS_URL, LOGPLEX_CONFIG_REDIS_URL]", "plexus creds", "plexus channels"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}
