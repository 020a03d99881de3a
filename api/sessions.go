package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/syslog"
	"github.com/plexus-router/plexus/syslog/filter"
)

// Sessions: POST creates a stored request (the body, verbatim), GET
// streams it. A session's history is the newest min(num, History)
// messages of the channel log read up to a cursor; its tail continues from
// exactly that cursor, so history and live messages join without a gap or
// a duplicate.
//
// Logplex differences:
//   - A session serves exactly num lines; Logplex served num+1 (its LRANGE
//     0 N off-by-one) when no filter was set.
//   - "tail": false (or null, "false", 0) does not tail; Logplex tailed
//     whenever the key was present (heroku/logplex#72, #118).
//   - num may be a JSON number and channel_id a number; Logplex crashed
//     (500) on both. A non-UUID session id is 404 at once (Logplex: 500).
//   - A tail reads the log at its own pace instead of through a
//     1024-message buffer: a slow client gets an L11 line with the exact
//     number of messages that left retention before it read them.
//   - With DENY_TAIL_SESSIONS a legacy tail session ends after its
//     history (Logplex kept it open with nothing routed to it).
//   - With Accept: text/event-stream the session is Server-Sent Events and
//     can resume (Last-Event-ID or ?since=); SSE streams send a keep-alive
//     comment when idle. Plain streams have no heartbeat, as Logplex.

type sessionKind int

const (
	sessionLegacyText sessionKind = iota // POST /sessions → the URL as text
	sessionLegacyJSON                    // POST /v2/sessions → {"url"}
	sessionCanary                        // POST /v2/canary-sessions → {"url":"/v2/canary-fetch/<id>"}
)

// Session tuning.
const (
	sessionPoll      = 100 * time.Millisecond // session lookup retry interval
	tailReadLimit    = 1000                   // records per tail read
	tailReadBytes    = 64 << 10               // about this many bytes per tail read
	tailFlushBytes   = 256 << 10              // a tail catching up writes up to this much at once
	historyReadBytes = 1 << 20                // about this many bytes per history read
	streamWriteLimit = 60 * time.Second       // a stream write must finish within this
)

func (s *Server) sessionURL(id string) string { return s.conf.APIURL + "/sessions/" + id }

// createSession serves the legacy session creation routes. The body is
// stored verbatim and only interpreted when the session is fetched
// (Logplex).
func (s *Server) createSession(kind sessionKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := s.readBody(w, r)
		if !ok || !checkSessionFilter(w, body) {
			return
		}
		if msg, ok := validSessionBody(body); !ok {
			if kind == sessionLegacyText {
				writeText(w, http.StatusUnprocessableEntity, msg)
			} else {
				writeJSONError(w, http.StatusUnprocessableEntity, msg)
			}
			return
		}
		sess, err := s.Store.CreateSession(r.Context(), body, s.conf.SessionTTL)
		if err != nil {
			s.fail(w, r, err, false)
			return
		}
		s.Metrics.sessionsCreated.Inc()
		switch kind {
		case sessionLegacyText:
			writeText(w, http.StatusCreated, s.sessionURL(sess.ID))
		case sessionLegacyJSON:
			writeJSON(w, http.StatusCreated, map[string]string{"url": s.sessionURL(sess.ID)})
		case sessionCanary:
			writeJSON(w, http.StatusCreated, map[string]string{"url": "/v2/canary-fetch/" + sess.ID})
		}
	}
}

type v3SessionBody struct {
	req  channels.SessionRequest
	body []byte
}

// parseSessionBody: the body must be a session request with a channel_id
// (400 before auth).
func parseSessionBody(w http.ResponseWriter, body []byte) (any, bool) {
	req, err := channels.ParseSessionRequest(body)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	if _, ok := compileFilter(w, req.Filter); !ok {
		return nil, false
	}
	return v3SessionBody{req, body}, true
}

// v3CreateSession: POST /v3/sessions → 201, Location and {"url"} pointing
// at the session streaming route | 422 {"error":"channel not found"}.
func (s *Server) v3CreateSession(w http.ResponseWriter, r *http.Request, in any) {
	req := in.(v3SessionBody)
	if msg, ok := validSessionBody(req.body); !ok {
		writeJSONError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	if _, err := s.Store.Channel(r.Context(), req.req.ChannelID); err != nil {
		if channels.IsNotFound(err) {
			writeJSONError(w, http.StatusUnprocessableEntity, "channel not found")
			return
		}
		s.fail(w, r, err, true)
		return
	}
	sess, err := s.Store.CreateSession(r.Context(), req.body, s.conf.SessionTTL)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.Metrics.sessionsCreated.Inc()
	u := s.sessionURL(sess.ID)
	w.Header().Set("Location", u)
	writeJSON(w, http.StatusCreated, map[string]string{"url": u})
}

// lookupSession finds a session, waiting up to SessionWait for one that
// is not there yet (a cluster's replication lag), as Logplex did. A string
// that is not a UUID is not found at once.
func (s *Server) lookupSession(ctx context.Context, id string) (channels.Session, error) {
	if !channels.IsSessionID(id) {
		return channels.Session{}, channels.ErrSessionNotFound
	}
	deadline := time.Now().Add(s.conf.SessionWait)
	for {
		sess, err := s.Store.Session(ctx, id)
		if err == nil || !channels.IsNotFound(err) || time.Now().After(deadline) {
			return sess, err
		}
		t := time.NewTimer(sessionPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return sess, ctx.Err()
		case <-t.C:
		}
	}
}

// getSession: GET /sessions/{id} and GET /v2/canary-fetch/{id} (no auth:
// the session id is the capability). A canary fetch never tails.
func (s *Server) getSession(canary bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		sess, err := s.lookupSession(ctx, mux.Vars(r)["id"])
		if err != nil {
			switch {
			case channels.IsNotFound(err):
				writeText(w, http.StatusNotFound, "Not found")
			case ctx.Err() == nil:
				s.fail(w, r, err, false)
			}
			return
		}
		req, err := channels.ParseSessionRequest(sess.Body)
		if err != nil {
			writeText(w, http.StatusBadRequest, err.Error())
			return
		}
		// Logplex did not check the channel: a session of an unknown
		// channel serves an empty history (and tails it).
		ch, err := s.Store.Channel(ctx, req.ChannelID)
		if err != nil && !channels.IsNotFound(err) {
			s.fail(w, r, err, false)
			return
		}
		match, err := compileSessionFilter(req.Filter)
		if err != nil {
			writeText(w, http.StatusBadRequest, "invalid filter: "+err.Error())
			return
		}
		st := &stream{
			s: s, w: w, rc: http.NewResponseController(w), ch: req.ChannelID, req: req,
			sse:      strings.Contains(r.Header.Get("Accept"), "text/event-stream"),
			filtered: req.PS != "" || req.Source != "" || match != nil,
			match:    match,
		}
		var since channels.Cursor // epoch "" = the current one
		resume := false
		if st.sse {
			v := r.Header.Get("Last-Event-ID")
			if v == "" {
				v = r.URL.Query().Get("since")
			}
			if v != "" {
				var ok bool
				if since, ok = parseEventID(v); !ok {
					writeText(w, http.StatusBadRequest, "Last-Event-ID and since must be a message offset")
					return
				}
				resume = true
			}
		}
		var sinceTime time.Time
		fromTime := false
		if !resume {
			var valid bool
			if sinceTime, fromTime, valid = sessionStart(w, r, sess.Body); !valid {
				return
			}
		}
		info, err := s.Log.Info(ctx, req.ChannelID)
		if err != nil {
			s.fail(w, r, err, false)
			return
		}
		tail := req.Tail && !canary && !s.conf.DenyTails && !ch.HasFlag("no_tail")

		h := w.Header()
		// Log text is the client's: a browser opening the session URL must
		// never run or sniff it (a logged <script> stays text).
		h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		if st.sse {
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
		} else {
			h.Set("Content-Type", "text/html")
			if !canary {
				h.Set("Connection", "close")
			}
		}
		if ch.HasFlag("no_redis") {
			h.Set("X-Heroku-Warning", "Warning: log history discarded due to excessive volume.")
		}
		w.WriteHeader(http.StatusOK)

		var cur channels.Cursor
		switch {
		case resume:
			cur, err = st.resume(ctx, info, since)
		case fromTime:
			cur, err = st.fromTime(ctx, info, sinceTime)
		default:
			cur, err = st.history(ctx, info)
		}
		if err == nil && req.Tail && !canary && !s.conf.DenyTails && ch.HasFlag("no_tail") {
			st.notice(appendL20Line(st.line[:0], time.Now()))
		}
		if err == nil {
			err = st.flush()
		}
		if err != nil || !tail {
			return
		}
		s.Metrics.tailSessions.Inc()
		defer s.Metrics.tailSessions.Dec()
		_ = st.follow(ctx, cur)
	}
}

// stream writes one session's lines (plain or SSE events).
type stream struct {
	s        *Server
	w        http.ResponseWriter
	rc       *http.ResponseController
	ch       string
	req      channels.SessionRequest
	sse      bool
	filtered bool
	match    *filter.Matcher // req.Filter compiled (nil: none)
	recs     channels.Records
	out      []byte // pending output
	line     []byte // one formatted line
	marks    []int  // history: start of each entry in out
	epoch    string // epoch of the records being emitted (SSE ids)
}

// format formats rec as a session line into st.line; false when the
// message does not parse (never shown, as in Logplex) or fails the filters.
func (st *stream) format(rec channels.Record) bool {
	var ok bool
	st.line, ok = st.appendLine(st.line[:0], rec)
	return ok
}

// appendLine appends rec's session line to dst; false (dst unchanged) when
// the message does not parse or fails the filters.
func (st *stream) appendLine(dst []byte, rec channels.Record) ([]byte, bool) {
	f, ok := syslog.Parse(rec.Data)
	if !ok {
		st.s.Metrics.sessionUnparseable.Inc()
		return dst, false
	}
	if st.req.Source != "" && string(f.AppName) != st.req.Source ||
		st.req.PS != "" && !channels.MatchPS(st.req.PS, string(f.ProcID)) {
		return dst, false
	}
	if st.match != nil && !st.match.MatchFields(f) {
		return dst, false
	}
	if st.req.Format == channels.FormatRFC5424 {
		return syslog.AppendRawLine(dst, rec.Data), true
	}
	return syslog.AppendSessionLine(dst, f), true
}

// emit adds rec to the output if it is shown.
func (st *stream) emit(rec channels.Record) {
	if !st.sse {
		st.out, _ = st.appendLine(st.out, rec) // plain lines: no copy through st.line
		return
	}
	if st.format(rec) {
		st.add(rec.Offset, true, st.line)
	}
}

// notice adds a line Plexus itself writes (L11, L15, L20); in SSE it is an
// event without id, so it does not move the client's Last-Event-ID.
func (st *stream) notice(line []byte) { st.add(0, false, line) }

func (st *stream) add(offset uint64, hasID bool, line []byte) {
	if !st.sse {
		st.out = append(st.out, line...)
		return
	}
	st.out = appendEvent(st.out, st.epoch, offset, hasID, line)
}

// appendEvent appends one SSE event: "id: <epoch>:<offset>\ndata: <line>\n\n",
// the line without its trailing newline; a line break inside the line
// starts another data field (clients join them with "\n").
//
// The id is the message's offset qualified by the log epoch (just the
// offset while the channel has no epoch yet). A browser sends it back as
// Last-Event-ID; the epoch lets the server tell a client whose history
// restarted (a Redis shard that lost its data, an embedded log lost in a
// crash) that it did — offsets start again in a new epoch, so a bare
// offset would resume at the wrong place without a word.
func appendEvent(dst []byte, epoch string, offset uint64, hasID bool, line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if hasID {
		dst = append(dst, "id: "...)
		if epoch != "" {
			dst = append(dst, epoch...)
			dst = append(dst, ':')
		}
		dst = strconv.AppendUint(dst, offset, 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	for i := 0; i < len(line); i++ {
		switch c := line[i]; c {
		case '\r':
			if i+1 < len(line) && line[i+1] == '\n' {
				i++
			}
			fallthrough
		case '\n':
			dst = append(dst, "\ndata: "...)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, "\n\n"...)
}

// flush writes the pending output and flushes it to the client. The first
// flush also sends the headers (chunked).
func (st *stream) flush() error {
	_ = st.rc.SetWriteDeadline(time.Now().Add(streamWriteLimit))
	if len(st.out) > 0 {
		if _, err := st.w.Write(st.out); err != nil {
			return err
		}
		st.out = st.out[:0]
	}
	return st.rc.Flush()
}

// history writes the session's history: the newest min(num, History)
// messages, or with filters the newest num matches among the newest
// History messages. It returns the cursor right after what it read.
func (st *stream) history(ctx context.Context, info channels.LogInfo) (channels.Cursor, error) {
	n := st.s.conf.History
	keep := st.req.Num
	if keep < 0 || keep > n {
		keep = n
	}
	if !st.filtered {
		n = keep
	}
	from := channels.Cursor{Epoch: info.Epoch, Offset: info.Next - min(uint64(n), info.Next-info.First)}
	st.epoch = info.Epoch
	st.marks = st.marks[:0]
	cur, err := st.s.readRange(ctx, st.ch, from, info.Next, &st.recs, func(rec channels.Record) {
		if st.format(rec) {
			st.marks = append(st.marks, len(st.out))
			st.add(rec.Offset, true, st.line)
		}
	})
	if extra := len(st.marks) - keep; extra > 0 {
		st.out = st.out[:copy(st.out, st.out[st.marks[extra]:])]
	}
	return cur, err
}

// parseEventID reads a Last-Event-ID or ?since= value: "<epoch>:<offset>"
// as sent in SSE ids, or a bare offset (in the current epoch).
func parseEventID(v string) (channels.Cursor, bool) {
	v = strings.TrimSpace(v)
	var c channels.Cursor
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		c.Epoch, v = v[:i], v[i+1:]
		if c.Epoch == "" {
			return c, false
		}
	}
	off, err := strconv.ParseUint(v, 10, 64)
	c.Offset = off
	return c, err == nil
}

// resume writes what follows the message at offset since (an SSE client's
// Last-Event-ID) up to the end of the log, with no history window. An
// offset beyond the end means the channel's history restarted.
func (st *stream) resume(ctx context.Context, info channels.LogInfo, since channels.Cursor) (channels.Cursor, error) {
	st.epoch = info.Epoch
	from := channels.Cursor{Epoch: info.Epoch, Offset: since.Offset + 1}
	if since.Epoch != "" && since.Epoch != info.Epoch || from.Offset > info.Next {
		// The client's message belongs to a history that restarted.
		st.notice(appendResetLine(st.line[:0], time.Now()))
		from.Offset = info.First
	}
	return st.pump(ctx, from, info.Next)
}

// pump writes the messages from cur up to offset until (not included),
// with the notices of follow, and returns the cursor after them.
func (st *stream) pump(ctx context.Context, cur channels.Cursor, until uint64) (channels.Cursor, error) {
	for cur.Offset < until {
		res, err := st.read(ctx, cur, int(min(until-cur.Offset, tailReadLimit)))
		if err != nil || st.recs.Len() == 0 {
			return res.Next, err
		}
		for i := 0; i < st.recs.Len(); i++ {
			rec := st.recs.At(i)
			if rec.Offset >= until && !res.Reset {
				return channels.Cursor{Epoch: res.Epoch, Offset: rec.Offset}, nil
			}
			st.emit(rec)
		}
		cur = res.Next
		if res.Reset {
			break
		}
		if len(st.out) >= tailReadBytes {
			if err := st.flush(); err != nil {
				return cur, err
			}
		}
	}
	return cur, nil
}

// read reads from cur into st.recs and adds the notices for what the read
// reports: an L11 line with the exact number of messages that left
// retention before they were read, a reset line when the history restarted.
func (st *stream) read(ctx context.Context, cur channels.Cursor, limit int) (channels.ReadResult, error) {
	res, err := st.s.Log.Read(ctx, st.ch, cur, limit, tailReadBytes, &st.recs)
	if err != nil {
		return channels.ReadResult{Next: cur}, err
	}
	if res.Epoch != "" {
		st.epoch = res.Epoch
	}
	now := time.Now()
	if res.Reset {
		st.notice(appendResetLine(st.line[:0], now))
	}
	if res.Missed > 0 {
		st.notice(syslog.AppendL11Line(st.line[:0], res.Missed, res.MissedSince, now))
	}
	return res, nil
}

// follow streams live messages from cur until the client goes away (or
// the log fails). It pulls from the log: a slow client only slows itself.
//
// When the backend fails (a Redis shard restarting) the tail waits and
// tries again while the client is connected: it pauses, then continues
// from its cursor, rather than ending.
func (st *stream) follow(ctx context.Context, cur channels.Cursor) error {
	failures := 0
	for {
		res, err := st.read(ctx, cur, tailReadLimit)
		if err != nil {
			if !st.retry(ctx, err, &failures) {
				return err
			}
			continue
		}
		failures = 0
		for i := 0; i < st.recs.Len(); i++ {
			st.emit(st.recs.At(i))
		}
		cur = res.Next
		// A full read means more is there already: gather up to
		// tailFlushBytes before writing, so that a tail catching up
		// writes (and its client reads) in large pieces.
		full := st.recs.Len() >= tailReadLimit || st.recs.Bytes() >= tailReadBytes-8<<10
		if len(st.out) > 0 && (!full || len(st.out) >= tailFlushBytes) {
			if err := st.flush(); err != nil {
				return err
			}
		}
		if st.recs.Len() > 0 {
			continue // there may be more right away
		}
		if err := st.wait(ctx, cur); err != nil && !st.retry(ctx, err, &failures) {
			return err
		}
	}
}

// retry decides after a log error whether to go on following: not when
// the client left, the server is stopping or the log is closed; otherwise
// after a pause that grows with consecutive failures (up to 2 s), keeping
// an SSE connection alive meanwhile.
func (st *stream) retry(ctx context.Context, err error, failures *int) bool {
	if ctx.Err() != nil || errors.Is(err, channels.ErrClosed) {
		return false
	}
	*failures++
	pause := min(time.Duration(*failures)*100*time.Millisecond, 2*time.Second)
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	if st.sse {
		st.out = append(st.out, ": backend unavailable, retrying\n\n"...)
		if st.flush() != nil {
			return false
		}
	}
	return true
}

// wait waits for the message at next (or a new history). SSE streams
// write a keep-alive comment every Heartbeat while idle.
func (st *stream) wait(ctx context.Context, next channels.Cursor) error {
	if !st.sse {
		return st.s.Log.Wait(ctx, st.ch, next)
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, st.s.conf.Heartbeat)
		err := st.s.Log.Wait(wctx, st.ch, next)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		st.out = append(st.out, ": keep-alive\n\n"...)
		if err := st.flush(); err != nil {
			return err
		}
	}
}

// readRange calls fn for the records from `from` up to offset until (not
// included) and returns the cursor right after the last one. Messages that
// left retention meanwhile are skipped silently (a history is a snapshot).
func (s *Server) readRange(ctx context.Context, ch string, from channels.Cursor, until uint64, recs *channels.Records, fn func(channels.Record)) (channels.Cursor, error) {
	cur := from
	for cur.Offset < until {
		res, err := s.Log.Read(ctx, ch, cur, int(min(until-cur.Offset, tailReadLimit)), historyReadBytes, recs)
		if err != nil {
			return cur, err
		}
		for i := 0; i < recs.Len(); i++ {
			rec := recs.At(i)
			if rec.Offset >= until && !res.Reset {
				return channels.Cursor{Epoch: res.Epoch, Offset: rec.Offset}, nil
			}
			fn(rec)
		}
		cur = res.Next
		if recs.Len() == 0 || res.Reset {
			break
		}
	}
	return cur, nil
}

// noticeTime formats times in Plexus's own notices as syslog does in
// Logplex's (UTC, "+00:00").
func appendNoticeTime(dst []byte, t time.Time) []byte {
	dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05")
	return append(dst, "+00:00"...)
}

// appendResetLine appends the line a session writes when the channel's
// history restarted under its cursor (a new log epoch: a Redis shard that
// came back empty, a crash of the embedded backend): how many messages
// were lost is unknown. Logplex had no such case; Plexus uses Heroku's L15
// ("Tail buffer temporarily unavailable"), whose documented meaning — the
// stored history was unavailable — is the closest.
func appendResetLine(dst []byte, now time.Time) []byte {
	dst = appendNoticeTime(dst, now)
	return append(dst, " logplex[1]: Error L15 (Tail buffer temporarily unavailable) -> The history of this channel restarted; messages may have been lost.\n"...)
}

// appendL20Line appends Logplex's line for a tail of a channel flagged
// no_tail. Logplex printed a local time with an odd offset format; Plexus
// prints UTC like its other notices.
func appendL20Line(dst []byte, now time.Time) []byte {
	dst = appendNoticeTime(dst, now)
	return append(dst, " Logplex: Error L20 (Tail sessions forbidden) Tail sessions for this app are forbidden due to log volume.\n"...)
}
