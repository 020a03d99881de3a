package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/syslog"
)

// Reading from a point in time and paging through a channel's history.
//
// since_time=<RFC 3339> (a session body field, an SSE query parameter, a
// GET /v3/channels/{id}/logs parameter) starts at the first message
// ingested at or after that instant (Log.Seek). Ingest times never
// decrease along a channel's offsets, so among messages with the same
// time the lowest offset comes first: a client that re-subscribes with
// the time of the last message it saw gets that message (and any others
// with the same time) again, never fewer.

// Paging defaults and bounds of GET /v3/channels/{id}/logs.
const (
	defaultPageLimit = 1000
	maxPageLimit     = 10000
	defaultPageBytes = 64 << 10
	maxPageBytes     = 16 << 20
	pageScanLimit    = 100000 // messages read (filtered or not) per page at most
)

// Paging response headers.
const (
	headerNextOffset = "Plexus-Next-Offset"
	headerTruncated  = "Plexus-Truncated"
)

const sinceTimeError = "'since_time' must be an RFC 3339 time, such as 2024-05-01T12:00:00Z"

// parseSinceTime reads an RFC 3339 time (fractional seconds allowed).
func parseSinceTime(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	return t, err == nil
}

// sessionSinceTime reads the since_time field of a session body: present
// reports whether it is there (and not null), ok whether it is valid.
func sessionSinceTime(body []byte) (t time.Time, present, ok bool) {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return t, false, true // the body's own parser answers
	}
	v, found := raw["since_time"]
	if !found || isNull(v) {
		return t, false, true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return t, true, false
	}
	t, ok = parseSinceTime(s)
	return t, true, ok
}

// sessionStart returns the instant a session fetch starts at, from the
// since_time query parameter or else the body's since_time. ok is false
// (and the answer written) for an invalid value.
func sessionStart(w http.ResponseWriter, r *http.Request, body []byte) (t time.Time, present, ok bool) {
	if v := r.URL.Query().Get("since_time"); v != "" {
		if t, ok = parseSinceTime(v); !ok {
			writeText(w, http.StatusUnprocessableEntity, sinceTimeError)
			return t, true, false
		}
		return t, true, true
	}
	if t, present, ok = sessionSinceTime(body); !ok {
		writeText(w, http.StatusUnprocessableEntity, sinceTimeError)
	}
	return t, present, ok
}

// fromTime writes what the channel holds from the first message ingested
// at or after t up to the end of the log, with no history window (num is
// not applied), and returns the cursor after it: the tail continues there.
func (st *stream) fromTime(ctx context.Context, info channels.LogInfo, t time.Time) (channels.Cursor, error) {
	st.epoch = info.Epoch
	from, err := st.s.Log.Seek(ctx, st.ch, t)
	if err != nil {
		return channels.Cursor{Epoch: info.Epoch, Offset: info.Next}, err
	}
	return st.pump(ctx, from, info.Next)
}

// logsPage is a parsed paging request of GET /v3/channels/{id}/logs.
type logsPage struct {
	after    channels.Cursor
	hasAfter bool
	since    time.Time
	hasSince bool
	limit    int
	maxBytes int
	ps, src  string
}

// isPaging reports whether a logs request asks for a page rather than
// the newest num messages.
func isPaging(q url.Values) bool {
	for _, k := range []string{"after", "since_time", "limit", "max_bytes"} {
		if q.Has(k) {
			return true
		}
	}
	return false
}

// parseLogsPage reads the paging parameters; the message is for a 422.
func parseLogsPage(q url.Values) (logsPage, string) {
	p := logsPage{limit: defaultPageLimit, maxBytes: defaultPageBytes, ps: q.Get("ps"), src: q.Get("source")}
	if q.Has("after") {
		c, ok := parseEventID(q.Get("after"))
		if !ok {
			return p, "'after' must be a message offset (a non-negative integer, optionally \"<epoch>:<offset>\")"
		}
		p.after, p.hasAfter = c, true
	}
	if q.Has("since_time") {
		t, ok := parseSinceTime(q.Get("since_time"))
		if !ok {
			return p, sinceTimeError
		}
		p.since, p.hasSince = t, true
	}
	if p.hasAfter && p.hasSince {
		return p, "give either 'after' or 'since_time', not both"
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 {
			return p, "'limit' must be a positive integer"
		}
		p.limit = min(n, maxPageLimit)
	}
	if q.Has("max_bytes") {
		n, err := strconv.Atoi(q.Get("max_bytes"))
		if err != nil || n < 1 {
			return p, "'max_bytes' must be a positive integer"
		}
		p.maxBytes = min(n, maxPageBytes)
	}
	return p, ""
}

// v3LogsPage serves a page of GET /v3/channels/{id}/logs: messages oldest
// first from after+1 (or since_time, or the oldest retained message), at
// most limit of them, cut before the body would exceed max_bytes (a page
// holds at least one message). Plexus-Next-Offset is the value of after
// for the next page (the offset of the last message the page covered,
// filtered or not); Plexus-Truncated: true says max_bytes cut the page.
// Logplex-Msg-Count is the number of messages in the body.
func (s *Server) v3LogsPage(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	p, msg := parseLogsPage(r.URL.Query())
	if msg != "" {
		writeJSONError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	fail := func(err error) {
		s.Logger.Error().Err(err).Str("channel_id", id).Msg("channel logs page")
		writeJSONError(w, http.StatusInternalServerError, "failed to fetch channel logs")
	}
	info, err := s.Log.Info(ctx, id)
	if err != nil {
		fail(err)
		return
	}
	var cur channels.Cursor
	switch {
	case p.hasAfter:
		cur = channels.Cursor{Epoch: p.after.Epoch, Offset: p.after.Offset + 1}
		if cur.Epoch == "" {
			cur.Epoch = info.Epoch
		}
	case p.hasSince:
		if cur, err = s.Log.Seek(ctx, id, p.since); err != nil {
			fail(err)
			return
		}
	default:
		cur = channels.Cursor{Epoch: info.Epoch, Offset: info.First}
	}
	until := info.Next
	var recs channels.Records
	var out []byte
	count, scanned, truncated := 0, 0, false
page:
	for cur.Offset < until && count < p.limit && scanned < pageScanLimit {
		res, err := s.Log.Read(ctx, id, cur, int(min(until-cur.Offset, tailReadLimit)), historyReadBytes, &recs)
		if err != nil {
			fail(err)
			return
		}
		for i := 0; i < recs.Len(); i++ {
			rec := recs.At(i)
			if rec.Offset >= until {
				break page
			}
			scanned++
			f, ok := syslog.Parse(rec.Data)
			if ok && logsMatch(f, p.ps, p.src) {
				n := len(out)
				out = syslog.AppendLogsFrame(out, f)
				if count > 0 && len(out) > p.maxBytes {
					out, truncated = out[:n], true
					break page
				}
				count++
			}
			cur = channels.Cursor{Epoch: res.Epoch, Offset: rec.Offset + 1}
			if count >= p.limit || scanned >= pageScanLimit {
				break page
			}
		}
		if recs.Len() == 0 {
			if res.Next.Offset > cur.Offset {
				cur = res.Next // messages trimmed meanwhile: skip them
				continue
			}
			break
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/logplex-1")
	h.Set("Logplex-Msg-Count", strconv.Itoa(count))
	next := uint64(0)
	if cur.Offset > 0 {
		next = cur.Offset - 1
	}
	h.Set(headerNextOffset, strconv.FormatUint(next, 10))
	if truncated {
		h.Set(headerTruncated, "true")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// v3LogsRoute answers paging requests of GET /v3/channels/{id}/logs and
// reports whether it did (the newest-num form is v3Logs' own).
func (s *Server) v3LogsRoute(w http.ResponseWriter, r *http.Request) bool {
	if !isPaging(r.URL.Query()) {
		return false
	}
	id := mux.Vars(r)["id"]
	if _, err := s.Store.Channel(r.Context(), id); err != nil {
		s.v3Fail(w, r, err)
		return true
	}
	s.v3LogsPage(w, r, id)
	return true
}

// logsMatch applies the ps and source filters of a logs request.
func logsMatch(f syslog.Fields, ps, src string) bool {
	return (src == "" || string(f.AppName) == src) && (ps == "" || channels.MatchPS(ps, string(f.ProcID)))
}

// validSessionBody checks the Plexus additions to a session body at
// creation (the rest is checked when it is fetched, as Logplex did).
func validSessionBody(body []byte) (string, bool) {
	if _, _, ok := sessionSinceTime(bytes.TrimSpace(body)); !ok {
		return sinceTimeError, false
	}
	return "", true
}
