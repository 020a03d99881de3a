package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/plexus-router/plexus/channels"
)

// rateLimitChange is the "rate_limit" of a v3 channel PUT: absent (set
// false) keeps the channel's limit, null or {} removes it, an object sets
// it.
type rateLimitChange struct {
	set   bool
	limit *channels.RateLimit
}

// parseRateLimit reads obj["rate_limit"]: 400 invalid payload when it is
// not an object of numbers, 422 when a number is negative.
func parseRateLimit(w http.ResponseWriter, obj map[string]json.RawMessage) (rateLimitChange, bool) {
	raw, found := obj["rate_limit"]
	if !found {
		return rateLimitChange{}, true
	}
	if isNull(raw) {
		return rateLimitChange{set: true}, true
	}
	var rl channels.RateLimit
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rl); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid payload")
		return rateLimitChange{}, false
	}
	if err := rl.Validate(); err != nil {
		writeJSONError(w, http.StatusUnprocessableEntity, err.Error())
		return rateLimitChange{}, false
	}
	if rl.IsZero() {
		return rateLimitChange{set: true}, true
	}
	return rateLimitChange{set: true, limit: &rl}, true
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}
