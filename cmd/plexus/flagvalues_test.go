package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"4096", 4096}, {"64MiB", 64 << 20}, {"64mib", 64 << 20}, {"64 MiB", 64 << 20},
		{"512KiB", 512 << 10}, {"1GB", 1e9}, {"1.5KiB", 1536}, {"2G", 2 << 30}, {"10B", 10},
	} {
		if got, err := parseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "-1", "-64MiB", "MiB", "1.5B", "lots", "1e300GiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0"}, {1500, "1500"}, {64 << 20, "64MiB"}, {100 << 10, "100KiB"}, {1 << 40, "1TiB"}, {1536, "1536"}} {
		if got := formatSize(tc.n); got != tc.want {
			t.Errorf("formatSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{time.Hour, "1h"}, {90 * time.Minute, "1h30m"}, {10 * time.Minute, "10m"}, {90 * time.Second, "1m30s"}, {2 * time.Second, "2s"}, {100 * time.Millisecond, "100ms"}, {0, "0s"}} {
		if got := formatDuration(tc.d); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestConfigUnitsAndSafety(t *testing.T) {
	c, err := parseConfig([]string{"-max-body", "16MiB", "-drain-retention-bytes", "1GiB", "-max-frame", "8KiB", "-drain-retention-age", "2h"},
		env(map[string]string{"PLEXUS_CACHE_BYTES": "128MiB"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBody != 16<<20 || c.DrainRetentionBytes != 1<<30 || c.MaxFrame != 8<<10 || c.DrainRetentionAge != 2*time.Hour || c.CacheBytes != 128<<20 {
		t.Errorf("units: %+v", c)
	}
	if c, err := parseConfig([]string{"-auth-key", "change-me", "-insecure-key"}, env(nil), &bytes.Buffer{}); err != nil || c.AuthKey != "change-me" {
		t.Errorf("-insecure-key: %v", err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"-log-level", "loud"}, want: `-log-level "loud": want debug, info, warn or error`},
		{env: map[string]string{"PLEXUS_LOG_FORMAT": "xml"}, want: `-log-format "xml": want json, console or auto`},
		{args: []string{"-max-body", "-1"}, want: "must not be negative"},
		{args: []string{"-max-conns", "-5"}, want: "must not be negative"},
		{args: []string{"-session-ttl", "-1m"}, want: "must not be negative"},
		{args: []string{"-max-body", "8 MegaBytes"}, want: "want a number of bytes with an optional unit"},
		{args: []string{"-auth-key", "change-me"}, want: "admin key"},
		{args: []string{"-auth-key", "short-key"}, want: "-insecure-key"},
		{env: map[string]string{"PLEXUS_AUTH_KEY": "change-me"}, want: "admin key"},
		{args: []string{"-api-tls-cert", "c.pem"}, want: "-api-tls-cert and -api-tls-key go together"},
		{args: []string{"-logs-tls-key", "k.pem"}, want: "-logs-tls-cert and -logs-tls-key go together"},
		{args: []string{"-histroy", "5"}, want: `did you mean "-history"?`},
	} {
		_, err := parseConfig(tc.args, env(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q, %v) = %v, want an error with %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// plexus -h prints sizes and durations with units.
func TestUsageShowsUnits(t *testing.T) {
	var out bytes.Buffer
	parseConfig([]string{"-h"}, env(nil), &out)
	for _, want := range []string{`-max-body [PLEXUS_MAX_BODY] (default "8MiB")`, `-drain-retention-age [PLEXUS_DRAIN_RETENTION_AGE] (default "1h")`, "plexus tail"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}
