package channels

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// DefaultSessionNum is the history length of a session that names no num.
const DefaultSessionNum = 100

// SessionRequest is the parsed body of a session: which channel to read,
// how much history, whether to follow, and the filters.
type SessionRequest struct {
	ChannelID string
	Num       int  // history lines wanted; -1 means all retained
	Tail      bool // follow live messages after the history
	PS        string
	Source    string
	Filter    string // a filter expression (syslog/filter), "" for none
	Format    string // "" (Logplex's lines) or FormatRFC5424
}

// ParseSessionRequest parses a session body. channel_id must be a string
// (Logplex) or a number (accepted); num may be a decimal string (Logplex) or
// a number; tail is true only for JSON true, "true" or 1 (Logplex tailed
// whenever the key was present, even for false: a bug, heroku/logplex#72).
func ParseSessionRequest(body []byte) (SessionRequest, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return SessionRequest{}, Errorf(CodeInvalid, "invalid session JSON")
	}
	r := SessionRequest{Num: DefaultSessionNum}
	switch v := jsonScalar(raw["channel_id"]).(type) {
	case string:
		r.ChannelID = v
	case json.Number:
		r.ChannelID = v.String()
	}
	if r.ChannelID == "" {
		return SessionRequest{}, Errorf(CodeInvalid, "'channel_id' missing")
	}
	if v, ok := raw["num"]; ok {
		var s string
		switch x := jsonScalar(v).(type) {
		case string:
			s = x
		case json.Number:
			s = x.String()
		case nil:
			s = ""
		default:
			return SessionRequest{}, Errorf(CodeInvalid, "'num' must be a decimal integer")
		}
		if s != "" {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < -1 {
				return SessionRequest{}, Errorf(CodeInvalid, "'num' must be a decimal integer")
			}
			r.Num = n
		}
	}
	switch v := jsonScalar(raw["tail"]).(type) {
	case bool:
		r.Tail = v
	case string:
		r.Tail = v == "true" || v == "1"
	case json.Number:
		r.Tail = v.String() != "0"
	}
	if s, ok := jsonScalar(raw["ps"]).(string); ok {
		r.PS = s
	}
	if s, ok := jsonScalar(raw["source"]).(string); ok {
		r.Source = s
	}
	if s, ok := jsonScalar(raw["filter"]).(string); ok {
		r.Filter = s
	}
	if s, ok := jsonScalar(raw["format"]).(string); ok {
		f, err := CheckFormat(s)
		if err != nil {
			return SessionRequest{}, err
		}
		r.Format = f
	}
	return r, nil
}

func jsonScalar(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(m))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}

// MatchPS reports whether procid passes the ps filter: an exact match, or
// the filter followed by "." ("web" matches "web" and "web.1", not "webx").
func MatchPS(filter, procid string) bool {
	if filter == "" || procid == filter {
		return true
	}
	return len(procid) > len(filter) && procid[len(filter)] == '.' && procid[:len(filter)] == filter
}
