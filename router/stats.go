package router

import (
	"bytes"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/stats"
)

// SetStats makes the router count every message it routes in reg, per
// channel, source (the token's name), process type and severity. Call
// before the router is used.
func (r *Router) SetStats(reg *stats.Registry) { r.stats = reg }

// Stats returns the registry set by SetStats (nil if none).
func (r *Router) Stats() *stats.Registry { return r.stats }

// tally is what one read (or one request) adds to a channel's counters.
// The Ingester tallies its messages locally and adds the tallies to the
// shared counters once per Commit: those are atomics, and counting each
// message there would cost several contended atomic adds and a clock read
// per message.
type tally struct {
	c          *stats.Channel
	source     string
	proc       [2]int32 // the process type: in.tallyBuf[proc[0]:proc[1]]
	severity   int8
	reason     int8 // -1: received
	n          uint64
	channelKey string
}

// maxTallies bounds the tallies of one Commit; past it they are flushed.
const maxTallies = 64

// count counts msg (RFC 5424) as received by rt's channel.
func (in *Ingester) count(rt channels.Route, msg []byte) { in.tallyMsg(rt, msg, -1) }

// countAfterToken is count for a message whose token ends at j: when the
// token is the APP-NAME, the PROCID follows it and the scan for it starts
// there (the timestamp, host and token are not scanned again).
// The route remembers its last tally, usually the one this message adds
// to.
func (in *Ingester) countAfterToken(e *cachedRoute, msg []byte, j int) {
	if in.r.stats == nil {
		return
	}
	if j >= len(msg) || msg[j] != ' ' {
		in.tallyMsg(e.rt, msg, -1) // token in structured data
		return
	}
	pri := 0
	for p := 1; p < len(msg) && msg[p] >= '0' && msg[p] <= '9'; p++ {
		pri = pri*10 + int(msg[p]-'0')
	}
	rest := msg[j+1:]
	end := bytes.IndexByte(rest, ' ')
	if end < 0 {
		end = len(rest)
	}
	e.tally = in.tallyAt(&e.rt, pri&7, stats.ProcessType(rest[:end]), -1, e.tally)
}

// countDropped counts a message of rt's channel dropped at ingest.
func (in *Ingester) countDropped(rt channels.Route, msg []byte, reason stats.Reason) {
	in.tallyMsg(rt, msg, int8(reason))
}

func (in *Ingester) tallyMsg(rt channels.Route, msg []byte, reason int8) {
	if in.r.stats == nil {
		return
	}
	sev, procid := severityAndProcID(msg)
	in.tallyAt(&rt, sev, stats.ProcessType(procid), reason, -1)
}

// tallyAt adds one message with that severity and process type to the
// tallies and returns the index of its tally; hint is where to look first
// (-1: nowhere).
func (in *Ingester) tallyAt(rt *channels.Route, sev int, proc []byte, reason int8, hint int) int {
	if hint >= 0 && hint < len(in.tallies) && in.tallies[hint].is(in, rt, sev, proc, reason) {
		in.tallies[hint].n++
		return hint
	}
	for i := range in.tallies {
		if in.tallies[i].is(in, rt, sev, proc, reason) {
			in.tallies[i].n++
			return i
		}
	}
	if len(in.tallies) >= maxTallies {
		in.flushTallies()
	}
	c, ok := in.counts[rt.ChannelID]
	if !ok {
		c = in.r.stats.Channel(rt.ChannelID)
		in.counts[rt.ChannelID] = c
	}
	start := int32(len(in.tallyBuf))
	in.tallyBuf = append(in.tallyBuf, proc...)
	in.tallies = append(in.tallies, tally{
		c: c, source: rt.Name, channelKey: rt.ChannelID, proc: [2]int32{start, int32(len(in.tallyBuf))},
		severity: int8(sev), reason: reason, n: 1,
	})
	return len(in.tallies) - 1
}

// is reports whether t counts messages of rt with that severity, process
// type and reason.
func (t *tally) is(in *Ingester, rt *channels.Route, sev int, proc []byte, reason int8) bool {
	return t.reason == reason && int(t.severity) == sev && t.source == rt.Name && t.channelKey == rt.ChannelID &&
		string(in.tallyBuf[t.proc[0]:t.proc[1]]) == string(proc)
}

// flushTallies adds the tallies to the shared counters.
func (in *Ingester) flushTallies() {
	for i := range in.tallies {
		t := &in.tallies[i]
		proc := in.tallyBuf[t.proc[0]:t.proc[1]]
		if t.reason < 0 {
			t.c.ReceivedN(t.source, proc, int(t.severity), t.n)
		} else {
			t.c.DroppedN(stats.Reason(t.reason), t.source, proc, int(t.severity), t.n)
		}
		*t = tally{}
	}
	in.tallies = in.tallies[:0]
	in.tallyBuf = in.tallyBuf[:0]
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
	if p >= len(msg) {
		return sev, nil
	}
	// "<PRI>1 TS HOST APP PROCID": skip four fields (bytes.IndexByte is
	// vectorized: a byte loop here cost a visible share of ingest).
	for f := 0; f < 4; f++ {
		i := bytes.IndexByte(msg[p:], ' ')
		if i < 0 {
			return sev, nil
		}
		p += i + 1
		for p < len(msg) && msg[p] == ' ' {
			p++
		}
	}
	end := bytes.IndexByte(msg[p:], ' ')
	if end < 0 {
		end = len(msg) - p
	}
	if end == 0 {
		return sev, nil
	}
	return sev, msg[p : p+end]
}
