package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/syslog"
)

// v3 API: Logplex's cowboy_rest resources. Every resource checks, in
// cowboy's order: service available (503) → method allowed (405 + Allow)
// → malformed body (400, before auth) → authorized (401 +
// WWW-Authenticate) → the method itself.
//
// Logplex answered 415 to requests whose Content-Type was not exactly
// application/json (most likely, cowboy 1.0); Plexus does not look at the
// request Content-Type (the body must be JSON anyway), so `curl -d` works.

// v3Method is one method of a v3 resource.
type v3Method struct {
	// parse checks the body before authentication (cowboy's
	// malformed_request); nil means the body is ignored. It returns the
	// value handed to serve, or answers itself and returns false.
	parse func(w http.ResponseWriter, body []byte) (any, bool)
	serve func(w http.ResponseWriter, r *http.Request, in any)
	admin bool // only the admin key, not full_api credentials
}

// v3Resource is a REST resource: its methods, and an optional extra
// "service unavailable" condition.
type v3Resource struct {
	methods     map[string]v3Method
	unavailable func() bool
}

func (s *Server) registerV3(m *mux.Router) {
	h := func(tmpl string, res v3Resource) {
		m.Handle(tmpl, s.instrument(tmpl, s.v3(res)))
	}
	m.Handle("/v3/healthcheck", s.instrument("/v3/healthcheck", http.HandlerFunc(s.healthcheck)))
	h("/v3/channels", v3Resource{methods: map[string]v3Method{
		"GET": {serve: s.v3ListChannels},
	}})
	const ch = "/v3/channels/{id}"
	const drain = ch + "/drains/{drain:[0-9]+}"
	h(ch, v3Resource{methods: map[string]v3Method{
		"GET":    {serve: s.v3GetChannel},
		"PUT":    {parse: parsePutChannel, serve: s.v3PutChannel},
		"DELETE": {serve: s.v3DeleteChannel},
	}})
	h(ch+"/tokens", v3Resource{methods: map[string]v3Method{
		"POST": {parse: parseTokenBody, serve: s.v3CreateToken},
	}})
	h(ch+"/drains", v3Resource{methods: map[string]v3Method{
		"POST": {parse: parseDrainBody(false), serve: s.v3CreateDrain},
	}})
	h(drain, v3Resource{methods: map[string]v3Method{
		"GET":    {serve: s.v3GetDrain},
		"PUT":    {parse: parseDrainBody(true), serve: s.v3SetDrain},
		"DELETE": {serve: s.v3DeleteDrain},
	}})
	h(ch+"/logs", v3Resource{methods: map[string]v3Method{
		"GET": {serve: s.v3Logs},
	}})
	h(ch+"/stats", v3Resource{methods: map[string]v3Method{
		"GET": {serve: s.v3ChannelStats},
	}})
	h("/v3/sessions", v3Resource{
		methods:     map[string]v3Method{"POST": {parse: parseSessionBody, serve: s.v3CreateSession}},
		unavailable: func() bool { return s.conf.DenyTails },
	})
	h("/v3/nodes", v3Resource{methods: map[string]v3Method{
		"GET": {serve: s.v3Nodes},
	}})
	h("/v3/creds", v3Resource{methods: map[string]v3Method{
		"GET":  {serve: s.listCreds, admin: true},
		"POST": {parse: parseCredBody, serve: s.createCred, admin: true},
	}})
	h("/v3/creds/{cred}", v3Resource{methods: map[string]v3Method{
		"DELETE": {serve: s.deleteCred, admin: true},
	}})
	h("/v3/dropped", v3Resource{methods: map[string]v3Method{
		"GET": {serve: s.v3Dropped, admin: true},
	}})
}

// setRequestID sets the request-id response header: the request's own, or
// a fresh UUID when it had none. Logplex: a client-supplied id was only
// logged; Plexus echoes it.
func setRequestID(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("Request-Id")
	if id == "" {
		id = uuid.NewString()
	}
	w.Header().Set("Request-Id", id)
}

func (s *Server) v3(res v3Resource) http.Handler {
	allowed := make([]string, 0, len(res.methods))
	for m := range res.methods {
		allowed = append(allowed, m)
	}
	sort.Strings(allowed)
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRequestID(w, r)
		switch {
		case s.conf.APIStatus == StatusDisabled,
			s.conf.APIStatus == StatusReadOnly && r.Method != http.MethodGet,
			res.unavailable != nil && res.unavailable():
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		m, ok := res.methods[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var in any
		if m.parse != nil {
			body, ok := s.readBody(w, r)
			if !ok {
				return
			}
			if in, ok = m.parse(w, body); !ok {
				return
			}
		}
		if authed := s.isAdmin(r) || !m.admin && s.authorized(r); !authed {
			w.Header().Set("Www-Authenticate", "Basic realm=Logplex")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		m.serve(w, r, in)
	})
}

// healthcheck: GET /v3/healthcheck (no auth, unaffected by API_STATUS) →
// 200 "OK", or 503 "SYSTEM BOOTING" until the store is loaded, 503
// "SHUTTING DOWN" once shutdown began, 200 "DEGRADED: <reason>" while the
// node works around a fault (an extension).
func (s *Server) healthcheck(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	code, reason := s.health()
	switch {
	case code != http.StatusOK:
		w.WriteHeader(code)
		_, _ = w.Write([]byte(reason))
	case reason != "":
		_, _ = w.Write([]byte("DEGRADED: " + reason))
	default:
		_, _ = w.Write([]byte("OK"))
	}
}

// decodeObject decodes a JSON object body. ok is false for invalid JSON
// (answered 400 with an empty body, as Logplex) and for JSON that is not
// an object (400 {"error":"invalid payload"}).
func decodeObject(w http.ResponseWriter, body []byte) (map[string]json.RawMessage, bool) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return nil, false
	}
	if _, isObj := v.(map[string]any); !isObj {
		writeJSONError(w, http.StatusBadRequest, "invalid payload")
		return nil, false
	}
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(body, &obj)
	return obj, true
}

func emptyBody(b []byte) bool { return len(bytes.TrimSpace(b)) == 0 }

type putChannel struct {
	names     []string
	setTokens bool
	// retention: set (or removed, when nil) if setRetention; retErr is a
	// validation failure answered 422 after authentication.
	retention    *channels.ChannelRetention
	setRetention bool
	retErr       error
	rate         rateLimitChange // api/ratelimit.go
}

// parsePutChannel: {"tokens":["a","b"]} sets the token set to exactly
// those names; {} (no tokens key) removes every token, as Logplex. An
// empty body (Logplex: 400) only makes sure the channel exists.
// "retention":{"messages":N,"bytes":B,"age":"24h"} (a Plexus extension)
// sets the channel's own retention, null removes it; a body with
// retention and no tokens key keeps the tokens. A channel's retention is
// kept by PUTs that do not name it.
func parsePutChannel(w http.ResponseWriter, body []byte) (any, bool) {
	if emptyBody(body) {
		return putChannel{}, true
	}
	obj, ok := decodeObject(w, body)
	if !ok {
		return nil, false
	}
	in := putChannel{setTokens: true}
	if raw, found := obj["tokens"]; found && !isNull(raw) {
		if err := json.Unmarshal(raw, &in.names); err != nil {
			writeJSONError(w, http.StatusBadRequest, "invalid payload")
			return nil, false
		}
	}
	if raw, found := obj["retention"]; found {
		in.setRetention = true
		in.retention, in.retErr = channels.ParseChannelRetention(raw)
		if _, hasTokens := obj["tokens"]; !hasTokens {
			in.setTokens = false // {"retention":…} alone keeps the tokens
		}
	}
	if in.rate, ok = parseRateLimit(w, obj); !ok {
		return nil, false
	}
	if _, hasTokens := obj["tokens"]; !hasTokens && in.rate.set {
		in.setTokens = false // {"rate_limit":…} alone keeps the tokens
	}
	return in, true
}

// channelDoc is the v3 channel document; tokens and drains are omitted
// when empty.
type channelDoc struct {
	Channel string            `json:"channel"`
	Tokens  map[string]string `json:"tokens,omitempty"`
	Drains  []drainJSON       `json:"drains,omitempty"`
	// Retention is the channel's own retention (a Plexus extension).
	Retention *channels.ChannelRetention `json:"retention,omitempty"`
	// RateLimit is the channel's own input limit (absent: the default).
	RateLimit *channels.RateLimit `json:"rate_limit,omitempty"`
}

func (s *Server) channelDoc(r *http.Request, id string, tokens []channels.Token) (channelDoc, error) {
	doc := channelDoc{Channel: id}
	if ch, err := s.Store.Channel(r.Context(), id); err == nil {
		doc.Retention = ch.Retention
	}
	if tokens == nil {
		var err error
		if tokens, err = s.Store.ChannelTokens(r.Context(), id); err != nil {
			return doc, err
		}
	}
	if len(tokens) > 0 {
		doc.Tokens = make(map[string]string, len(tokens))
		for _, t := range tokens {
			doc.Tokens[t.Name] = t.ID
		}
	}
	drains, err := s.Store.ChannelDrains(r.Context(), id)
	if err != nil {
		return doc, err
	}
	for _, d := range drains {
		doc.Drains = append(doc.Drains, v3DrainDoc(d))
	}
	return doc, nil
}

// v3PutChannel: PUT /v3/channels/{id} → 201 (created) or 200, channel document.
func (s *Server) v3PutChannel(w http.ResponseWriter, r *http.Request, in any) {
	req := in.(putChannel)
	id := mux.Vars(r)["id"]
	if req.retErr != nil {
		writeJSONError(w, http.StatusUnprocessableEntity, req.retErr.Error())
		return
	}
	ch, tokens, created, err := s.Store.PutChannel(r.Context(), id, req.names, req.setTokens)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	if req.setRetention {
		if ch, err = s.Store.SetChannelRetention(r.Context(), id, req.retention); err != nil {
			s.fail(w, r, err, true)
			return
		}
	}
	if req.rate.set {
		if ch, err = s.Store.SetChannelRateLimit(r.Context(), id, req.rate.limit); err != nil {
			s.fail(w, r, err, true)
			return
		}
	}
	if tokens == nil {
		tokens = []channels.Token{} // do not list again: PutChannel returned the set
	}
	doc, err := s.channelDoc(r, id, tokens)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	doc.RateLimit = ch.RateLimit
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, doc)
}

// v3GetChannel: GET /v3/channels/{id} → 200 channel document | 404 empty.
func (s *Server) v3GetChannel(w http.ResponseWriter, r *http.Request, _ any) {
	id := mux.Vars(r)["id"]
	ch, err := s.Store.Channel(r.Context(), id)
	if err != nil {
		s.v3Fail(w, r, err)
		return
	}
	doc, err := s.channelDoc(r, id, nil)
	if err != nil {
		s.v3Fail(w, r, err)
		return
	}
	doc.RateLimit = ch.RateLimit
	writeJSON(w, http.StatusOK, doc)
}

// channelLister is a Store that can list its channels (both backends).
type channelLister interface {
	ChannelIDs(ctx context.Context) ([]string, error)
}

// v3ListChannels: GET /v3/channels (extension) → 200, the channel
// documents sorted by id; 501 from a store that cannot list.
func (s *Server) v3ListChannels(w http.ResponseWriter, r *http.Request, _ any) {
	l, ok := s.Store.(channelLister)
	if !ok {
		w.WriteHeader(http.StatusNotImplemented)
		return
	}
	ids, err := l.ChannelIDs(r.Context())
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	docs := make([]channelDoc, 0, len(ids))
	for _, id := range ids {
		doc, err := s.channelDoc(r, id, nil)
		if err != nil {
			if channels.IsNotFound(err) {
				continue // deleted meanwhile
			}
			s.fail(w, r, err, true)
			return
		}
		docs = append(docs, doc)
	}
	writeJSON(w, http.StatusOK, docs)
}

// v3Fail answers an error: not found → 404 with an empty body (Logplex),
// anything else through fail.
func (s *Server) v3Fail(w http.ResponseWriter, r *http.Request, err error) {
	if channels.IsNotFound(err) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	s.fail(w, r, err, true)
}

// v3DeleteChannel: DELETE /v3/channels/{id} → 204 | 404.
func (s *Server) v3DeleteChannel(w http.ResponseWriter, r *http.Request, _ any) {
	if err := s.deleteChannel(r, mux.Vars(r)["id"]); err != nil {
		s.v3Fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseTokenBody: {"name":"<string>"} is required (400 before auth).
func parseTokenBody(w http.ResponseWriter, body []byte) (any, bool) {
	obj, ok := decodeObject(w, body)
	if !ok {
		return nil, false
	}
	name, present, ok := stringField(obj, "name")
	if !ok || !present {
		writeJSONError(w, http.StatusBadRequest, "'name' must be a string")
		return nil, false
	}
	return name, true
}

// v3CreateToken: POST /v3/channels/{id}/tokens → 200 {"token","name"} | 404.
// Logplex waited up to 2 s for the channel to appear (replication lag);
// the store answers authoritatively.
func (s *Server) v3CreateToken(w http.ResponseWriter, r *http.Request, in any) {
	id := mux.Vars(r)["id"]
	if _, err := s.Store.Channel(r.Context(), id); err != nil {
		s.v3Fail(w, r, err)
		return
	}
	t, err := s.Store.CreateToken(r.Context(), id, in.(string))
	if err != nil {
		if httpStatus(err) == http.StatusInternalServerError {
			s.Logger.Error().Err(err).Str("channel_id", id).Msg("create token")
			writeJSONError(w, http.StatusInternalServerError, "failed to create token")
			return
		}
		s.fail(w, r, err, true)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Token string `json:"token"`
		Name  string `json:"name"`
	}{t.ID, t.Name})
}

type drainBody struct {
	url    string
	hasURL bool
	opts   drainOptions
}

// parseDrainBody: {"url":"…"} (required when needURL) or {} to reserve.
// An empty body reserves too (Logplex: a POST without a body crashed).
func parseDrainBody(needURL bool) func(w http.ResponseWriter, body []byte) (any, bool) {
	return func(w http.ResponseWriter, body []byte) (any, bool) {
		if emptyBody(body) && !needURL {
			return drainBody{}, true
		}
		obj, ok := decodeObject(w, body)
		if !ok {
			return nil, false
		}
		u, present, ok := stringField(obj, "url")
		if !ok || needURL && !present {
			writeJSONError(w, http.StatusBadRequest, "invalid payload")
			return nil, false
		}
		opts, ok := parseDrainOptions(w, obj)
		if !ok {
			return nil, false
		}
		return drainBody{url: u, hasURL: present, opts: opts}, true
	}
}

// v3DrainURL validates a drain destination. Logplex: v3 stored any URL its
// parser accepted (an ftp:// drain was stored and never started); Plexus
// answers 400 for an unparseable URL (as Logplex) and 422
// {"error":"Invalid drain destination: <reason>"} for one it cannot deliver to.
func v3DrainURL(w http.ResponseWriter, raw string) (channels.DrainURL, bool) {
	d, err := channels.ParseDrainURL(raw)
	if err != nil {
		code := http.StatusUnprocessableEntity
		if err.Error() == "invalid_uri" {
			code = http.StatusBadRequest
		}
		writeJSONError(w, code, "Invalid drain destination: "+err.Error())
		return d, false
	}
	return d, true
}

func (s *Server) drainLocation(channelID string, drainID int64) string {
	return s.conf.V3URL + "/v3/channels/" + url.PathEscape(channelID) + "/drains/" + strconv.FormatInt(drainID, 10)
}

// v3DrainError words store errors as Logplex's v3 drains did.
func (s *Server) v3DrainError(w http.ResponseWriter, r *http.Request, err error) {
	switch code := httpStatus(err); code {
	case http.StatusNotFound:
		w.WriteHeader(code)
	case http.StatusConflict:
		writeJSONError(w, code, "already exists")
	case http.StatusUnprocessableEntity:
		writeJSONError(w, code, "maximum number of drains reached")
	default:
		s.fail(w, r, err, true)
	}
}

// v3CreateDrain: POST /v3/channels/{id}/drains → 201 + Location,
// {"id","token"} (reserved) or {"id","token","url"}.
func (s *Server) v3CreateDrain(w http.ResponseWriter, r *http.Request, in any) {
	req, id := in.(drainBody), mux.Vars(r)["id"]
	var d channels.Drain
	var err error
	if req.hasURL {
		dst, ok := v3DrainURL(w, req.url)
		if !ok {
			return
		}
		d, err = s.createDrain(r.Context(), id, dst.Raw, req.opts.merge(channels.DrainOptions{}))
	} else {
		if _, err = s.Store.Channel(r.Context(), id); err == nil {
			d, err = s.Store.ReserveDrain(r.Context(), id)
		}
		if o := req.opts.merge(channels.DrainOptions{}); err == nil && o != (channels.DrainOptions{}) {
			d, err = s.Store.SetDrainOptions(r.Context(), id, d.ID, o)
		}
	}
	if err != nil {
		s.v3DrainError(w, r, err)
		return
	}
	w.Header().Set("Location", s.drainLocation(id, d.ID))
	writeJSON(w, http.StatusCreated, v3DrainDoc(d))
}

func drainIDVar(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(mux.Vars(r)["drain"], 10, 64)
	return id, err == nil
}

// v3SetDrain: PUT /v3/channels/{id}/drains/{drain} {"url"} → 200
// {"id","token","url"}. Logplex did not enforce the drain limit here
// (filling a reserved drain bypassed it); Plexus does.
func (s *Server) v3SetDrain(w http.ResponseWriter, r *http.Request, in any) {
	drainID, ok := drainIDVar(r)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	req := in.(drainBody)
	dst, ok := v3DrainURL(w, req.url)
	if !ok {
		return
	}
	if err := s.setDrainOptions(r.Context(), mux.Vars(r)["id"], drainID, req.opts); err != nil {
		s.v3DrainError(w, r, err)
		return
	}
	d, err := s.setDrainURL(r.Context(), mux.Vars(r)["id"], drainID, dst.Raw)
	if err != nil {
		s.v3DrainError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v3DrainDoc(d))
}

// v3GetDrain: GET /v3/channels/{id}/drains/{drain} (a Plexus extension) →
// 200 {"id","token","url","status":{…}} (status when delivery is running).
func (s *Server) v3GetDrain(w http.ResponseWriter, r *http.Request, _ any) {
	drainID, ok := drainIDVar(r)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	d, err := s.Store.Drain(r.Context(), drainID)
	if err == nil && d.ChannelID != mux.Vars(r)["id"] {
		err = channels.ErrDrainNotFound
	}
	if err != nil {
		s.v3Fail(w, r, err)
		return
	}
	doc := v3DrainDoc(d)
	if s.DrainStatus != nil {
		if st, ok := s.DrainStatus(d.ID); ok {
			doc.Status = &st
		}
	}
	writeJSON(w, http.StatusOK, doc)
}

// v3DeleteDrain: DELETE /v3/channels/{id}/drains/{drain} → 204 | 404.
// Logplex did not check that the drain belongs to the channel; Plexus does.
func (s *Server) v3DeleteDrain(w http.ResponseWriter, r *http.Request, _ any) {
	drainID, ok := drainIDVar(r)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if err := s.Store.DeleteDrain(r.Context(), mux.Vars(r)["id"], drainID); err != nil {
		s.v3Fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// v3Nodes: GET /v3/nodes (a Plexus extension) → 200 [{"id","addr","started_at","seen_at"}].
func (s *Server) v3Nodes(w http.ResponseWriter, r *http.Request, _ any) {
	nodes, err := s.Cluster.Nodes(r.Context())
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	if nodes == nil {
		nodes = []channels.Node{}
	}
	writeJSON(w, http.StatusOK, nodes)
}

// v3Logs: GET /v3/channels/{id}/logs?num=N → 200 application/logplex-1,
// the newest N messages (default 100, at most History; a non-integer num
// means 100, -1 means History) oldest first as LEN-framed lines, with
// Logplex-Msg-Count the number of messages read (unparseable ones are
// counted but not written, as Logplex). Logplex read N+1 messages (LRANGE
// 0 N); Plexus reads N.
func (s *Server) v3Logs(w http.ResponseWriter, r *http.Request, _ any) {
	if s.v3LogsRoute(w, r) {
		return // after, since_time, limit or max_bytes: a page (history.go)
	}
	ctx, id := r.Context(), mux.Vars(r)["id"]
	if _, err := s.Store.Channel(ctx, id); err != nil {
		s.v3Fail(w, r, err)
		return
	}
	num := channels.DefaultSessionNum
	if n, err := strconv.Atoi(r.URL.Query().Get("num")); err == nil {
		num = n
	}
	if num < 0 || num > s.conf.History {
		num = s.conf.History
	}
	info, err := s.Log.Info(ctx, id)
	if err != nil {
		s.Logger.Error().Err(err).Str("channel_id", id).Msg("channel logs")
		writeJSONError(w, http.StatusInternalServerError, "failed to fetch channel logs")
		return
	}
	q := r.URL.Query()
	match, ok := compileFilter(w, q.Get("filter"))
	if !ok {
		return
	}
	raw := q.Get("format") == channels.FormatRFC5424
	var recs channels.Records
	var out []byte
	var marks []int // with a filter: where each frame starts
	count := 0
	ps, src := q.Get("ps"), q.Get("source")
	window := uint64(num)
	if match != nil {
		window = uint64(s.conf.History) // the newest num matches among the retained history
	}
	from := channels.Cursor{Epoch: info.Epoch, Offset: info.Next - min(window, info.Next-info.First)}
	_, err = s.readRange(ctx, id, from, info.Next, &recs, func(rec channels.Record) {
		f, ok := syslog.Parse(rec.Data)
		if match != nil {
			if !ok || !match.MatchFields(f) {
				return
			}
			marks = append(marks, len(out))
		}
		count++
		switch {
		case !ok, !logsMatch(f, ps, src):
		case raw:
			out = syslog.AppendRawLogsFrame(out, rec.Data)
		default:
			out = syslog.AppendLogsFrame(out, f)
		}
	})
	if extra := len(marks) - num; match != nil && extra > 0 {
		out = out[marks[extra]:]
		count = num
	}
	if err != nil {
		s.Logger.Error().Err(err).Str("channel_id", id).Msg("channel logs")
		writeJSONError(w, http.StatusInternalServerError, "failed to fetch channel logs")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/logplex-1")
	h.Set("Logplex-Msg-Count", strconv.Itoa(count))
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush() // chunked, as Logplex
	_, _ = w.Write(out)
}
