package router

import (
	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/stats"
)

// SetStats makes the router count every message it routes in reg, per
// channel, source (the token's name), process type and severity. Call
// before the router is used.
func (r *Router) SetStats(reg *stats.Registry) { r.stats = reg }

// Stats returns the registry set by SetStats (nil if none).
func (r *Router) Stats() *stats.Registry { return r.stats }

// count counts msg (RFC 5424) as received by rt's channel.
func (in *Ingester) count(rt channels.Route, msg []byte) {
	if in.r.stats == nil {
		return
	}
	c, ok := in.counts[rt.ChannelID]
	if !ok {
		c = in.r.stats.Channel(rt.ChannelID)
		in.counts[rt.ChannelID] = c
	}
	sev, procid := severityAndProcID(msg)
	c.Received(rt.Name, procid, sev)
}

// countDropped counts a message of rt's channel dropped at ingest.
func (in *Ingester) countDropped(rt channels.Route, msg []byte, reason stats.Reason) {
	if in.r.stats == nil {
		return
	}
	c, ok := in.counts[rt.ChannelID]
	if !ok {
		c = in.r.stats.Channel(rt.ChannelID)
		in.counts[rt.ChannelID] = c
	}
	sev, procid := severityAndProcID(msg)
	c.Dropped(reason, rt.Name, procid, sev)
}

// severityAndProcID scans an RFC 5424 message for its severity (PRI mod 8)
// and PROCID, without allocating (-1 and nil where absent).
func severityAndProcID(msg []byte) (int, []byte) {
	pri, p := 0, 1
	for p < len(msg) && msg[p] >= '0' && msg[p] <= '9' {
		pri = pri*10 + int(msg[p]-'0')
		p++
	}
	sev := pri & 7
	// "<PRI>1 TS HOST APP PROCID"
	for f := 0; f < 4; f++ {
		for p < len(msg) && msg[p] != ' ' {
			p++
		}
		for p < len(msg) && msg[p] == ' ' {
			p++
		}
	}
	start := p
	for p < len(msg) && msg[p] != ' ' {
		p++
	}
	if start == p {
		return sev, nil
	}
	return sev, msg[start:p]
}
