package api

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Probes for orchestrators, without authentication and unaffected by
// API_STATUS:
//
//	GET /healthz  200 "ok" while the process serves (liveness)
//	GET /readyz   200 "ready" once the config is loaded, the backend is
//	              reachable and shutdown has not begun; else 503 and the
//	              reason (readiness)
func (s *Server) registerProbes(m *mux.Router) {
	m.Handle("/healthz", s.instrument("/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainText(w, http.StatusOK, "ok")
	})))
	m.Handle("/readyz", s.instrument("/readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, reason := s.health()
		switch {
		case code != http.StatusOK:
			plainText(w, code, reason)
		case reason != "": // degraded: the backend is not reachable
			plainText(w, http.StatusServiceUnavailable, "NOT READY: "+reason)
		default:
			plainText(w, http.StatusOK, "ready")
		}
	})))
}

func plainText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
