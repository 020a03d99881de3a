package storetest

import (
	"testing"

	"github.com/plexus-router/plexus/channels"
)

// testRateLimit: a channel's own rate limit is stored with it, kept by a
// PUT that does not set it, reaches the channel's routes (the hot path's
// limiter) and can be removed.
func testRateLimit(t *testing.T, s channels.Store) {
	const id = "app-ratelimit"
	_, ts, _, err := s.PutChannel(ctx(t), id, []string{"app"}, true)
	noErr(t, "PutChannel", err)
	_, err = s.SetChannelRateLimit(ctx(t), "no-such-channel", &channels.RateLimit{MessagesPerS: 1})
	wantCode(t, "SetChannelRateLimit unknown", err, channels.CodeNotFound)
	_, err = s.SetChannelRateLimit(ctx(t), id, &channels.RateLimit{MessagesPerS: -1})
	wantCode(t, "SetChannelRateLimit negative", err, channels.CodeInvalid)

	want := channels.RateLimit{MessagesPerS: 100, BytesPerS: 20000, Burst: 50}
	ch, err := s.SetChannelRateLimit(ctx(t), id, &want)
	noErr(t, "SetChannelRateLimit", err)
	if ch.RateLimit == nil || *ch.RateLimit != want {
		t.Fatalf("SetChannelRateLimit = %+v, want rate limit %+v", ch, want)
	}
	if _, _, _, err := s.PutChannel(ctx(t), id, []string{"app", "heroku"}, true); err != nil {
		t.Fatal(err)
	}
	ch, err = s.Channel(ctx(t), id)
	noErr(t, "Channel", err)
	if ch.RateLimit == nil || *ch.RateLimit != want {
		t.Fatalf("after PUT: Channel = %+v, want rate limit %+v kept", ch, want)
	}
	eventually(t, "the route carries the limit", func() bool {
		rt, ok := s.LookupToken([]byte(ts[0].ID))
		return ok && rt.Limiter != nil && rt.Limiter.Own() != nil && *rt.Limiter.Own() == want
	})

	ch, err = s.SetChannelRateLimit(ctx(t), id, nil)
	noErr(t, "SetChannelRateLimit nil", err)
	if ch.RateLimit != nil {
		t.Fatalf("after removal: %+v", ch.RateLimit)
	}
	ch, err = s.Channel(ctx(t), id)
	if err != nil || ch.RateLimit != nil {
		t.Fatalf("Channel after removal = %+v, %v", ch, err)
	}
	eventually(t, "the route's limit is gone", func() bool {
		rt, ok := s.LookupToken([]byte(ts[0].ID))
		return ok && rt.Limiter != nil && rt.Limiter.Own() == nil
	})
}
