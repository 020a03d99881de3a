package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/stats"
	"github.com/plexus-router/plexus/syslog/filter"
)

// filterError is the 422 body of an invalid filter: the expression
// library's message and where it applies.
type filterError struct {
	Error  string `json:"error"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// compileFilter compiles src ("" → nil, true), answering 422 when it is
// invalid.
func compileFilter(w http.ResponseWriter, src string) (*filter.Matcher, bool) {
	if src == "" {
		return nil, true
	}
	m, err := filter.Compile(src)
	if err != nil {
		writeFilterError(w, err)
		return nil, false
	}
	return m, true
}

func writeFilterError(w http.ResponseWriter, err error) {
	body := filterError{Error: "invalid filter: " + err.Error()}
	if fe, ok := err.(*filter.Error); ok {
		body.Line, body.Column = fe.Line, fe.Column
	}
	writeJSON(w, http.StatusUnprocessableEntity, body)
}

// drainOptions are the options a drain body gave; absent ones keep their
// value on PUT.
type drainOptions struct {
	filter, format       string
	hasFilter, hasFormat bool
}

// merge applies o over cur.
func (o drainOptions) merge(cur channels.DrainOptions) channels.DrainOptions {
	if o.hasFilter {
		cur.Filter = o.filter
	}
	if o.hasFormat {
		cur.Format = o.format
	}
	return cur
}

// parseDrainOptions reads "filter" and "format" of a drain body: 400 when
// they are not strings or the format is unknown, 422 for an invalid
// filter.
func parseDrainOptions(w http.ResponseWriter, obj map[string]json.RawMessage) (drainOptions, bool) {
	var o drainOptions
	var ok bool
	if o.filter, o.hasFilter, ok = stringField(obj, "filter"); !ok {
		writeJSONError(w, http.StatusBadRequest, "invalid payload: filter must be a string")
		return o, false
	}
	if o.format, o.hasFormat, ok = stringField(obj, "format"); !ok {
		writeJSONError(w, http.StatusBadRequest, "invalid payload: format must be a string")
		return o, false
	}
	f, err := channels.CheckFormat(o.format)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return o, false
	}
	o.format = f
	if err := filter.Check(o.filter); o.filter != "" && err != nil {
		writeFilterError(w, err)
		return o, false
	}
	return o, true
}

// setDrainOptions applies the options a PUT gave to an existing drain.
func (s *Server) setDrainOptions(ctx context.Context, channelID string, drainID int64, o drainOptions) error {
	if !o.hasFilter && !o.hasFormat {
		return nil
	}
	d, err := s.Store.Drain(ctx, drainID)
	if err != nil || d.ChannelID != channelID {
		return channels.ErrDrainNotFound
	}
	if n := o.merge(d.DrainOptions); n != d.DrainOptions {
		_, err = s.Store.SetDrainOptions(ctx, channelID, drainID, n)
	}
	return err
}

// v3DrainDoc is the v3 JSON of a drain.
func v3DrainDoc(d channels.Drain) drainJSON {
	return drainJSON{ID: d.ID, Token: d.Token, URL: d.URL, Filter: d.Filter, Format: d.Format}
}

// checkSessionFilter answers 422 when a session body holds an invalid
// filter. Bodies that are not session requests are left to the fetch
// (legacy creation stores any body, as Logplex).
func checkSessionFilter(w http.ResponseWriter, body []byte) bool {
	req, err := channels.ParseSessionRequest(body)
	if err != nil || req.Filter == "" {
		return true
	}
	if err := filter.Check(req.Filter); err != nil {
		writeFilterError(w, err)
		return false
	}
	return true
}

// channelStats is the body of GET /v3/channels/{id}/stats.
type channelStats struct {
	ChannelID string `json:"channel_id"`
	Since     string `json:"since"` // when this node started counting
	stats.ChannelSnapshot
}

// v3ChannelStats: GET /v3/channels/{id}/stats → 200 the channel's counts
// on this node (per source, process type and severity: received and
// dropped by reason, since start and over the last minute) | 404.
func (s *Server) v3ChannelStats(w http.ResponseWriter, r *http.Request, _ any) {
	id := mux.Vars(r)["id"]
	if _, err := s.Store.Channel(r.Context(), id); err != nil {
		s.v3Fail(w, r, err)
		return
	}
	doc := channelStats{ChannelID: id, ChannelSnapshot: stats.EmptySnapshot()}
	if s.Router != nil {
		if reg := s.Router.Stats(); reg != nil {
			doc.Since = reg.Started().UTC().Format("2006-01-02T15:04:05Z")
			if c, ok := reg.Lookup(id); ok {
				doc.ChannelSnapshot = c.Snapshot()
			}
		}
	}
	writeJSON(w, http.StatusOK, doc)
}

// compileSessionFilter compiles a stored session's filter (nil for none).
func compileSessionFilter(src string) (*filter.Matcher, error) {
	if src == "" {
		return nil, nil
	}
	return filter.Compile(src)
}
