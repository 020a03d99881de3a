package drains

import (
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
)

func TestEffectiveRetention(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	d := func(v time.Duration) *time.Duration { return &v }
	cfg := Config{
		Retention:        channels.Retention{Bytes: 64 << 20, Age: time.Hour, Keep: 1500},
		DefaultRetention: channels.Retention{Count: 1500},
	}
	tests := []struct {
		name   string
		own    *channels.ChannelRetention
		drains bool
		want   channels.Retention
	}{
		{"default", nil, false, channels.Retention{Count: 1500}},
		{"drains", nil, true, cfg.Retention},
		{"own age, no drains", &channels.ChannelRetention{Age: d(24 * time.Hour)}, false, channels.Retention{Count: 1500, Age: 24 * time.Hour}},
		{"own messages with drains", &channels.ChannelRetention{Messages: n(10)}, true, channels.Retention{Count: 10, Bytes: 64 << 20, Age: time.Hour, Keep: 1500}},
		{"own wins for bytes and age", &channels.ChannelRetention{Bytes: n(1 << 30), Age: d(48 * time.Hour)}, true, channels.Retention{Bytes: 1 << 30, Age: 48 * time.Hour, Keep: 1500}},
		{"everything lifted", &channels.ChannelRetention{Messages: n(0), Bytes: n(0), Age: d(0)}, false, channels.Retention{Count: channels.UnboundedCount}},
	}
	for _, tc := range tests {
		if got := effectiveRetention(cfg, tc.own, tc.drains); got != tc.want {
			t.Errorf("%s: effectiveRetention = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if got := effectiveRetention(Config{}, nil, true); got != channels.DefaultRetention {
		t.Errorf("no config: %+v, want the default", got)
	}
}
