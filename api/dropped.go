package api

import (
	"encoding/json"
	"net/http"
	"time"
)

// GET /v3/dropped (admin key only; a Plexus extension): a live sample of
// the input this node drops (unknown token, malformed, over a rate limit,
// log full), as newline-delimited JSON objects (router.Dropped: time,
// reason, listener, remote_addr, line with tokens redacted and cut to 512
// bytes, count), until the client goes away. An object {"skipped":N} says
// that N dropped lines were not shown (the tap is a bounded sample: it
// skips lines rather than slow the input down). A blank line is sent as a
// keep-alive every Heartbeat while nothing is dropped.
func (s *Server) v3Dropped(w http.ResponseWriter, r *http.Request, _ any) {
	if s.Router == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	rc := http.NewResponseController(w)
	tap := s.Router.Tap()
	defer tap.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	enc := json.NewEncoder(w)
	idle := time.NewTimer(s.conf.Heartbeat)
	defer idle.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-idle.C:
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteLimit))
			if _, err := w.Write([]byte("\n")); err != nil {
				return
			}
		case d := <-tap.C():
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteLimit))
			if n := tap.Skipped(); n > 0 {
				if err := enc.Encode(struct {
					Skipped int64 `json:"skipped"`
				}{n}); err != nil {
					return
				}
			}
			if err := enc.Encode(d); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
		idle.Reset(s.conf.Heartbeat)
	}
}
