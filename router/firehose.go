package router

import (
	"math/rand/v2"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/plexus-router/plexus/channels"
)

// The firehose (Logplex's FIREHOSE_CHANNEL_IDS and FIREHOSE_FILTER_TOKENS):
// every message of the other channels whose token name is in the filter
// (every message when the filter is empty) is also appended, raw (the
// token not replaced by its name), to one firehose channel picked at
// random per message. Messages of a firehose channel are never sent to
// the firehose again.
//
// Difference from Logplex: Logplex handed the copies to the firehose
// channel's drains only; here they are appended to its log, which its
// drains read, so its tails and history show them too. Make a firehose
// channel for the purpose.

type firehose struct {
	ids   []string
	hose  map[string]bool // channel id → is a firehose channel
	names map[string]bool // token names sent (empty: all)
	posts []prometheus.Counter
}

// SetFirehose configures the firehose: channelIDs receive copies, of the
// messages whose token name is in tokenNames (empty: of every message).
// No channel ids turns it off. Call it before the Router is used.
func (r *Router) SetFirehose(channelIDs, tokenNames []string, reg prometheus.Registerer) {
	if len(channelIDs) == 0 {
		r.fh = nil
		return
	}
	fh := &firehose{hose: map[string]bool{}, names: map[string]bool{}}
	posts := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "plexus_firehose_posts_total",
		Help: "Messages copied to a firehose channel, by firehose channel (Logplex's firehose.post.<id>).",
	}, []string{"channel_id"})
	for _, id := range channelIDs {
		if id == "" || fh.hose[id] {
			continue
		}
		fh.hose[id] = true
		fh.ids = append(fh.ids, id)
		fh.posts = append(fh.posts, posts.WithLabelValues(id))
	}
	for _, n := range tokenNames {
		if n != "" {
			fh.names[n] = true
		}
	}
	r.fh = fh
}

// firehose copies msg (raw, as received) to a firehose channel if rt's
// message goes there.
func (in *Ingester) firehose(rt channels.Route, msg []byte) {
	fh := in.r.fh
	if fh.hose[rt.ChannelID] || (len(fh.names) > 0 && !fh.names[rt.Name]) {
		return
	}
	i := 0
	if len(fh.ids) > 1 {
		i = rand.IntN(len(fh.ids))
	}
	in.batch(fh.ids[i]).Add(msg)
	if len(in.fhPosts) != len(fh.ids) {
		in.fhPosts = make([]int, len(fh.ids))
	}
	in.fhPosts[i]++
}

// countFirehose adds the committed copies to the counters.
func (in *Ingester) countFirehose() {
	for i, n := range in.fhPosts {
		if n > 0 {
			in.r.fh.posts[i].Add(float64(n))
			in.fhPosts[i] = 0
		}
	}
}
