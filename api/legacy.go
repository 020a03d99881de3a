package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/plexus-router/plexus/channels"
)

// Legacy (v1/v2) API: Logplex's mochiweb handlers on port 8001. Plain string
// bodies are text/html; JSON bodies are application/json except where
// Logplex sent them as text/html.

// legacyRoute says how a legacy handler is guarded.
type legacyRoute int

const (
	open     legacyRoute = iota // no authentication (session streaming)
	authed                      // management API credentials
	mutating                    // authenticated and refused in read_only mode
)

func (s *Server) registerLegacy(m *mux.Router) {
	h := func(method, tmpl string, kind legacyRoute, f http.HandlerFunc) {
		m.Handle(tmpl, s.instrument(tmpl, s.legacy(kind, f))).Methods(method)
	}
	const ch = "/channels/{id:[0-9]+}"
	h("GET", "/healthcheck", authed, s.legacyHealthcheck)
	h("POST", "/channels", mutating, s.legacyCreateChannel)
	h("GET", "/v2"+ch, authed, s.legacyGetChannel)
	h("DELETE", ch, mutating, s.legacyDeleteChannel(false))
	h("DELETE", "/v2"+ch, mutating, s.legacyDeleteChannel(true))
	h("POST", ch+"/token", mutating, s.legacyCreateToken(false))
	h("POST", "/v2"+ch+"/tokens", mutating, s.legacyCreateToken(true))
	h("POST", "/sessions", mutating, s.createSession(sessionLegacyText))
	h("POST", "/v2/sessions", mutating, s.createSession(sessionLegacyJSON))
	h("POST", "/v2/canary-sessions", authed, s.createSession(sessionCanary))
	h("GET", "/sessions/{id:[A-Za-z0-9_-]+}", open, s.getSession(false))
	h("GET", "/v2/canary-fetch/{id:[A-Za-z0-9_-]+}", open, s.getSession(true))
	h("GET", ch+"/info", authed, s.legacyChannelInfo)
	h("POST", ch+"/drains/tokens", mutating, s.legacyReserveDrain)
	h("POST", ch+"/drains/{drain:[0-9]+}", authed, deprecated("V1 Drain Creation API deprecated"))
	h("POST", "/v2"+ch+"/drains/{drain:[0-9]+}", mutating, s.legacySetDrain)
	h("POST", ch+"/drains", authed, deprecated("V1 Drain Creation API deprecated."))
	h("POST", "/v2"+ch+"/drains", mutating, s.legacyCreateDrain)
	h("GET", ch+"/drains", authed, deprecated("V1 Drain API Deprecated."))
	h("DELETE", ch+"/drains", authed, deprecated("V1 Drain API Deprecated."))
	h("DELETE", "/v2"+ch+"/drains/{drain:[0-9]+}", mutating, s.legacyDeleteDrain)
	// Logplex's POST /load hot-loaded Erlang modules; it is not served (404).
}

// legacy applies Logplex's legacy API checks in its order: disabled (503
// for everything), read_only (503 for mutating routes, before auth), auth
// (401 Not Authorized, no WWW-Authenticate).
func (s *Server) legacy(kind legacyRoute, f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch s.conf.LegacyStatus {
		case StatusDisabled:
			writeText(w, http.StatusServiceUnavailable, "Service Temporarily Disabled")
			return
		case StatusReadOnly:
			if kind == mutating {
				writeText(w, http.StatusServiceUnavailable, "Logplex API temporarily in read-only mode")
				return
			}
		}
		if kind != open && !s.authorized(r) {
			writeText(w, http.StatusUnauthorized, "Not Authorized")
			return
		}
		f(w, r)
	}
}

func deprecated(msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusNotImplemented, msg)
	}
}

// legacyHealthcheck: GET /healthcheck → {"status":"normal"|"read_only"}.
func (s *Server) legacyHealthcheck(w http.ResponseWriter, r *http.Request) {
	code, reason := s.health()
	if code != http.StatusOK {
		writeText(w, code, reason)
		return
	}
	body := map[string]string{"status": string(s.conf.LegacyStatus)}
	if reason != "" {
		body["degraded"] = reason // an extension; Logplex had only "status"
	}
	writeJSON(w, http.StatusOK, body)
}

// legacyObject reads a legacy JSON object body. An empty body is an empty
// object. Logplex: a malformed body crashed the handler (500); Plexus
// answers 400 {"error":"invalid JSON"}.
func (s *Server) legacyObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	b, ok := s.readBody(w, r)
	if !ok {
		return nil, false
	}
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(b)) == 0 {
		return obj, true
	}
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		writeJSONError(w, http.StatusBadRequest, "invalid JSON")
		return nil, false
	}
	return obj, true
}

// stringField decodes obj[key] as a string. present is false when the key
// is absent or null; ok is false when it has another type.
func stringField(obj map[string]json.RawMessage, key string) (v string, present, ok bool) {
	raw, found := obj[key]
	if !found || isNull(raw) {
		return "", false, true
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", true, false
	}
	return v, true, true
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// legacyCreateChannel: POST /channels {"name":…,"tokens":[…]} →
// 201 {"channel_id":123,"tokens":{"app":"t.…"}} ("tokens":[] when none).
func (s *Server) legacyCreateChannel(w http.ResponseWriter, r *http.Request) {
	obj, ok := s.legacyObject(w, r)
	if !ok {
		return
	}
	name, _, ok := stringField(obj, "name")
	if !ok {
		writeText(w, http.StatusBadRequest, "Channel name must be a string.")
		return
	}
	var names []string
	if raw, found := obj["tokens"]; found && !isNull(raw) {
		// Logplex: a non-list crashed the handler (500).
		if err := json.Unmarshal(raw, &names); err != nil {
			writeJSONError(w, http.StatusBadRequest, "'tokens' must be a list of strings")
			return
		}
	}
	ch, tokens, err := s.Store.CreateChannel(r.Context(), name, names)
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		ChannelID any `json:"channel_id"`
		Tokens    any `json:"tokens"`
	}{channelIDJSON(ch.ID), tokenObject(tokens)})
}

// tokenObject renders tokens as {"name":"t.…"} (keys sorted), or [] when
// there are none, as Logplex did.
func tokenObject(tokens []channels.Token) any {
	if len(tokens) == 0 {
		return []string{}
	}
	m := make(map[string]string, len(tokens))
	for _, t := range tokens {
		m[t.Name] = t.ID
	}
	return m
}

type legacyToken struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

type drainJSON struct {
	ID     int64                 `json:"id"`
	Token  string                `json:"token"`
	URL    string                `json:"url,omitempty"`
	Filter string                `json:"filter,omitempty"` // v3 only
	Format string                `json:"format,omitempty"` // v3 only
	Status *channels.DrainStatus `json:"status,omitempty"`
}

// channelContents returns an existing channel's tokens and drains
// (ErrChannelNotFound for an unknown channel).
func (s *Server) channelContents(ctx context.Context, id string) ([]channels.Token, []channels.Drain, error) {
	if _, err := s.Store.Channel(ctx, id); err != nil {
		return nil, nil, err
	}
	tokens, err := s.Store.ChannelTokens(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	drains, err := s.Store.ChannelDrains(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return tokens, drains, nil
}

// legacyGetChannel: GET /v2/channels/{id} → {"channel_id","tokens":[…],"drains":[…]}.
func (s *Server) legacyGetChannel(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	tokens, drains, err := s.channelContents(r.Context(), id)
	if err != nil {
		if channels.IsNotFound(err) {
			writeJSONError(w, http.StatusNotFound, "Not Found")
			return
		}
		s.fail(w, r, err, false)
		return
	}
	doc := struct {
		ChannelID any           `json:"channel_id"`
		Tokens    []legacyToken `json:"tokens"`
		Drains    []drainJSON   `json:"drains"`
	}{channelIDJSON(id), []legacyToken{}, []drainJSON{}}
	for _, t := range tokens {
		doc.Tokens = append(doc.Tokens, legacyToken{t.Name, t.ID})
	}
	for _, d := range drains {
		if d.URL != "" { // reserved drains without a destination are omitted
			doc.Drains = append(doc.Drains, drainJSON{ID: d.ID, Token: d.Token, URL: d.URL})
		}
	}
	writeJSON(w, http.StatusOK, doc)
}

// legacyDeleteChannel: DELETE /channels/{id} → 200 "OK" | 404 "Not found";
// DELETE /v2/channels/{id} → 200 empty | 404 {"error":"Not Found"}.
func (s *Server) legacyDeleteChannel(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		if err := s.deleteChannel(r, id); err != nil {
			switch {
			case !channels.IsNotFound(err):
				s.fail(w, r, err, false)
			case v2:
				writeJSONError(w, http.StatusNotFound, "Not Found")
			default:
				writeText(w, http.StatusNotFound, "Not found")
			}
			return
		}
		if v2 {
			writeText(w, http.StatusOK, "")
			return
		}
		writeText(w, http.StatusOK, "OK")
	}
}

// deleteChannel deletes a channel's configuration, then its log.
func (s *Server) deleteChannel(r *http.Request, id string) error {
	if err := s.Store.DeleteChannel(r.Context(), id); err != nil {
		return err
	}
	if err := s.Log.Delete(r.Context(), id); err != nil {
		s.Logger.Warn().Err(err).Str("channel_id", id).Msg("delete channel log")
	}
	return nil
}

// legacyCreateToken: POST /channels/{id}/token → 201 bare token (text/html);
// POST /v2/channels/{id}/tokens → 201 {"name","token"}. Logplex did not
// check that the channel exists; neither does the store.
func (s *Server) legacyCreateToken(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		obj, ok := s.legacyObject(w, r)
		if !ok {
			return
		}
		name, present, ok := stringField(obj, "name")
		if !ok || !present {
			if v2 {
				// Logplex sent this JSON body as text/html.
				writeJSONAs(w, http.StatusUnprocessableEntity, "text/html", map[string]string{"error": "NAME is a required field"})
			} else {
				writeText(w, http.StatusBadRequest, "'name' post param missing")
			}
			return
		}
		t, err := s.Store.CreateToken(r.Context(), mux.Vars(r)["id"], name)
		if err != nil {
			s.fail(w, r, err, false)
			return
		}
		if v2 {
			writeJSON(w, http.StatusCreated, legacyToken{t.Name, t.ID})
			return
		}
		writeText(w, http.StatusCreated, t.ID)
	}
}

// legacyChannelInfo: GET /channels/{id}/info → {"channel_id","tokens":{…},"drains":["url",…]}
// sent as text/html. Logplex: an unknown channel crashed (500); Plexus
// answers 404 "Not found".
func (s *Server) legacyChannelInfo(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	tokens, drains, err := s.channelContents(r.Context(), id)
	if err != nil {
		if channels.IsNotFound(err) {
			writeText(w, http.StatusNotFound, "Not found")
			return
		}
		s.fail(w, r, err, false)
		return
	}
	urls := []string{}
	for _, d := range drains {
		if d.URL != "" {
			urls = append(urls, d.URL)
		}
	}
	writeJSONAs(w, http.StatusOK, "text/html", struct {
		ChannelID any      `json:"channel_id"`
		Tokens    any      `json:"tokens"`
		Drains    []string `json:"drains"`
	}{channelIDJSON(id), tokenObject(tokens), urls})
}

// legacyReserveDrain: POST /channels/{id}/drains/tokens → 201 (JSON as
// text/html) {"id","token","msg"}. The channel is not checked (Logplex).
func (s *Server) legacyReserveDrain(w http.ResponseWriter, r *http.Request) {
	d, err := s.Store.ReserveDrain(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	writeJSONAs(w, http.StatusCreated, "text/html", struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
		Msg   string `json:"msg"`
	}{d.ID, d.Token, "Successfully reserved drain token"})
}

// legacyDrainURL reads {"url":"…"} or Logplex's legacy {"host":"h","port":514}
// and validates the destination. On failure it has answered: 422
// {"error":"Invalid drain destination: <reason>"}.
func (s *Server) legacyDrainURL(w http.ResponseWriter, r *http.Request) (channels.DrainURL, bool) {
	obj, ok := s.legacyObject(w, r)
	if !ok {
		return channels.DrainURL{}, false
	}
	invalid := func(reason string) (channels.DrainURL, bool) {
		writeJSONError(w, http.StatusUnprocessableEntity, "Invalid drain destination: "+reason)
		return channels.DrainURL{}, false
	}
	raw, present, ok := stringField(obj, "url")
	if !ok {
		return invalid("invalid_uri")
	}
	if !present {
		host, present, ok := stringField(obj, "host")
		if !ok || !present || host == "" {
			return invalid("missing_host_param")
		}
		port := 0
		if p, found := obj["port"]; found && !isNull(p) {
			// Logplex: a non-numeric port crashed the handler (500).
			if err := json.Unmarshal(p, &port); err != nil {
				return invalid("invalid_port")
			}
		}
		raw = channels.LegacyDrainURL(host, port)
	}
	d, err := channels.ParseDrainURL(raw)
	if err != nil {
		return invalid(err.Error())
	}
	return d, true
}

// legacyCreateDrain: POST /v2/channels/{id}/drains → 201 {"id","token","url"}.
func (s *Server) legacyCreateDrain(w http.ResponseWriter, r *http.Request) {
	dst, ok := s.legacyDrainURL(w, r)
	if !ok {
		return
	}
	d, err := s.createDrain(r.Context(), mux.Vars(r)["id"], dst.Raw, channels.DrainOptions{})
	if err != nil {
		s.legacyDrainError(w, r, err, "No such channel")
		return
	}
	writeJSON(w, http.StatusCreated, drainJSON{ID: d.ID, Token: d.Token, URL: d.URL})
}

// legacySetDrain: POST /v2/channels/{id}/drains/{drain} fills a reserved
// drain with a destination (or changes an existing drain's) → 201.
//
// Logplex deleted the drain when the destination was invalid; Plexus only
// deletes a reserved drain that has no destination yet, so a typo in an
// update does not remove a working drain. Logplex did not enforce the
// drain limit here (reserve + fill bypassed it); Plexus does.
func (s *Server) legacySetDrain(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	chID := vars["id"]
	drainID, err := strconv.ParseInt(vars["drain"], 10, 64)
	if err != nil {
		writeJSONError(w, http.StatusNotFound, "Unknown drain.")
		return
	}
	dst, ok := s.legacyDrainURL(w, r)
	if !ok {
		if d, err := s.Store.Drain(r.Context(), drainID); err == nil && d.ChannelID == chID && d.URL == "" {
			_ = s.Store.DeleteDrain(r.Context(), chID, drainID)
		}
		return
	}
	d, err := s.setDrainURL(r.Context(), chID, drainID, dst.Raw)
	if err != nil {
		s.legacyDrainError(w, r, err, "Unknown drain.")
		return
	}
	writeJSON(w, http.StatusCreated, drainJSON{ID: d.ID, Token: d.Token, URL: d.URL})
}

func (s *Server) legacyDrainError(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	switch code := httpStatus(err); code {
	case http.StatusNotFound:
		writeJSONError(w, code, notFound)
	case http.StatusConflict:
		writeJSONError(w, code, "Already exists")
	case http.StatusUnprocessableEntity:
		writeJSONError(w, code, "You have already added the maximum number of drains allowed")
	default:
		s.fail(w, r, err, false)
	}
}

// legacyDeleteDrain: DELETE /v2/channels/{id}/drains/{drain} → 200 empty |
// 404 {"error":"Not found"} (unknown, or another channel's drain).
func (s *Server) legacyDeleteDrain(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	drainID, err := strconv.ParseInt(vars["drain"], 10, 64)
	if err == nil {
		err = s.Store.DeleteDrain(r.Context(), vars["id"], drainID)
	} else {
		err = channels.ErrDrainNotFound
	}
	if err != nil {
		if channels.IsNotFound(err) {
			writeJSONError(w, http.StatusNotFound, "Not found")
			return
		}
		s.fail(w, r, err, false)
		return
	}
	writeText(w, http.StatusOK, "")
}
