package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/plexus-router/plexus/api/ui"
	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/router"
	"github.com/plexus-router/plexus/syslog"
)

// Status is the mode of an API: Logplex's LEGACY_API_STATUS and API_STATUS.
type Status string

// API modes.
const (
	StatusNormal   Status = "normal"
	StatusReadOnly Status = "read_only"
	StatusDisabled Status = "disabled"
)

// Config holds the settings of the HTTP side. Zero fields take the defaults
// documented on each field.
type Config struct {
	// AuthKey is the admin key: "Authorization: Basic <AuthKey>", compared
	// as an opaque string (Logplex's LOGPLEX_AUTH_KEY). Empty disables it.
	AuthKey string
	// APIURL is the public base of session URLs (default
	// http://localhost:8001); V3URL the base of drain Location headers
	// (default APIURL).
	APIURL, V3URL string

	LegacyStatus Status // v1/v2 routes and session streaming
	APIStatus    Status // v3 routes and the credentials API
	DenyIngress  bool   // POST /logs answers 503
	DenyTails    bool   // sessions never tail; POST /v3/sessions answers 503

	MaxDrains     int           // drains with a URL per channel (6); negative: no limit
	History       int           // most lines a session's history serves (channels.DefaultHistory)
	SessionTTL    time.Duration // session lifetime (360 s)
	MaxBody       int64         // POST /logs body limit, also after gunzip (8 MiB)
	MaxFrame      int           // largest octet-counted frame payload (syslog.DefaultMaxFrame)
	AppendTimeout time.Duration // how long POST /logs waits for log admission before 503 (2 s)

	SessionWait time.Duration // how long GET /sessions/{id} waits for an unknown session to appear (5 s)
	Heartbeat   time.Duration // SSE keep-alive comment interval while idle (15 s)
	MaxAPIBody  int64         // management API request body limit (1 MiB)
}

// Defaults.
const (
	DefaultAPIURL        = "http://localhost:8001"
	DefaultMaxDrains     = 6
	DefaultSessionTTL    = 360 * time.Second
	DefaultMaxBody       = 8 << 20
	DefaultAppendTimeout = 2 * time.Second
	DefaultSessionWait   = 5 * time.Second
	DefaultHeartbeat     = 15 * time.Second
	DefaultMaxAPIBody    = 1 << 20
)

func (c Config) withDefaults() Config {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	if c.V3URL == "" {
		c.V3URL = c.APIURL
	}
	c.V3URL = strings.TrimRight(c.V3URL, "/")
	if c.LegacyStatus == "" {
		c.LegacyStatus = StatusNormal
	}
	if c.APIStatus == "" {
		c.APIStatus = StatusNormal
	}
	switch {
	case c.MaxDrains == 0:
		c.MaxDrains = DefaultMaxDrains
	case c.MaxDrains < 0:
		c.MaxDrains = 0 // the store's "no limit"
	}
	if c.History <= 0 {
		c.History = channels.DefaultHistory
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = syslog.DefaultMaxFrame
	}
	if c.AppendTimeout <= 0 {
		c.AppendTimeout = DefaultAppendTimeout
	}
	if c.SessionWait <= 0 {
		c.SessionWait = DefaultSessionWait
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.MaxAPIBody <= 0 {
		c.MaxAPIBody = DefaultMaxAPIBody
	}
	return c
}

// Server is the HTTP side of Plexus. Set the fields, then mount
// APIHandler and LogsHandler on listeners. Fields must not change after the
// first handler was built.
type Server struct {
	Config Config
	Store  channels.Store
	Log    channels.Log
	Router *router.Router
	Logger zerolog.Logger
	// Metrics of this package (nil: unregistered ones) and the gatherer
	// served at GET /metrics (nil: prometheus.DefaultGatherer).
	Metrics  *Metrics
	Gatherer prometheus.Gatherer
	// RouterMetrics, when set, also counts HTTP input messages under
	// input="http" in the router's message counters.
	RouterMetrics *router.Metrics

	// DrainStatus, when set, adds a drain's delivery status to
	// GET /v3/channels/{id}/drains/{drain_id}.
	DrainStatus func(id int64) (channels.DrainStatus, bool)
	// Cluster (required) lists the nodes for GET /v3/nodes and names a
	// reason the node works in a degraded mode (Cluster.Degraded, e.g. a
	// cluster node writing to its local buffer while Redis is away):
	// healthchecks still answer 200 and add the reason. A node alone is a
	// channels.SingleNode.
	Cluster channels.Cluster

	once     sync.Once
	stopping atomic.Bool
	conf     Config
	bodies   sync.Pool // *[]byte, POST /logs bodies
	gzips    sync.Pool // *gzip.Reader
}

// SetShuttingDown makes healthchecks answer 503 "SHUTTING DOWN" so load
// balancers stop sending traffic while the node drains, and POST /logs
// refuses new messages the same way (requests already past that check
// finish).
func (s *Server) SetShuttingDown() { s.stopping.Store(true) }

// health says whether the node should receive traffic: 503 with a reason
// while booting or shutting down, else 200 with an optional degradation.
func (s *Server) health() (code int, reason string) {
	switch {
	case !s.Store.Ready():
		return http.StatusServiceUnavailable, "SYSTEM BOOTING"
	case s.stopping.Load():
		return http.StatusServiceUnavailable, "SHUTTING DOWN"
	}
	return http.StatusOK, s.Cluster.Degraded()
}

func (s *Server) init() {
	s.once.Do(func() {
		s.conf = s.Config.withDefaults()
		if s.Metrics == nil {
			s.Metrics = NewMetrics(nil)
		}
	})
}

// APIHandler serves the management API: legacy v1/v2 routes, v3 routes,
// the credentials API, session creation and streaming, GET /metrics
// (without authentication, like Logplex's metrics listener) and the web
// page under /ui/ (package ui; its files need no authentication, what it
// shows comes from the API with the user's credential).
func (s *Server) APIHandler() http.Handler {
	s.init()
	m := mux.NewRouter()
	m.SkipClean(true) // answer odd paths with 404 rather than redirects

	m.Handle("/metrics", s.instrument("/metrics", s.metricsHandler())).Methods(http.MethodGet)
	m.PathPrefix(ui.Prefix).Handler(s.instrument(ui.Prefix, ui.Handler()))
	m.Handle("/ui", http.RedirectHandler(ui.Prefix, http.StatusMovedPermanently))
	s.registerProbes(m)
	s.registerV3(m)
	s.registerLegacy(m)

	// Legacy routing answers a path whose method does not match with 404,
	// as Logplex's first-match handler list did. v3 resources dispatch
	// methods themselves (405 with Allow).
	unmatched := s.instrument("unmatched", http.HandlerFunc(s.notFound))
	m.NotFoundHandler = unmatched
	m.MethodNotAllowedHandler = unmatched
	return s.untilLoaded(m)
}

// untilLoaded answers 503 SYSTEM BOOTING (with Retry-After) to everything
// but the healthchecks and /metrics until the store's config is loaded: a
// cluster node loading its copy from Redis would otherwise answer 404 for
// channels that exist. Logplex did not start its API before the load.
func (s *Server) untilLoaded(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Store.Ready() {
			switch r.URL.Path {
			case "/healthcheck", "/v3/healthcheck", "/metrics", "/healthz", "/readyz":
			default:
				w.Header().Set("Retry-After", "1")
				writeText(w, http.StatusServiceUnavailable, "SYSTEM BOOTING")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) metricsHandler() http.Handler {
	g := s.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// notFound answers paths no route matched.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v3/") {
		setRequestID(w, r)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if s.conf.LegacyStatus == StatusDisabled {
		writeText(w, http.StatusServiceUnavailable, "Service Temporarily Disabled")
		return
	}
	writeText(w, http.StatusNotFound, "Not found")
}

// httpStatus maps a domain error to its HTTP status. It is the one place
// where channels.Code becomes a status; handlers choose the body (Logplex
// words its errors differently per endpoint).
func httpStatus(err error) int {
	switch channels.ErrorCode(err) {
	case channels.CodeNotFound:
		return http.StatusNotFound
	case channels.CodeInvalid:
		return http.StatusBadRequest
	case channels.CodeConflict:
		return http.StatusConflict
	case channels.CodeLimit:
		return http.StatusUnprocessableEntity
	case channels.CodeUnauthorized:
		return http.StatusUnauthorized
	case channels.CodeForbidden:
		return http.StatusForbidden
	case channels.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail answers an error no handler-specific text covers: the status from
// httpStatus, the error text as body (plain text for legacy routes, a JSON
// error for v3), and an empty body for internal errors, which are logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, v3 bool) {
	code := httpStatus(err)
	if code == http.StatusInternalServerError {
		if r.Context().Err() == nil {
			s.Logger.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("request failed")
		}
		w.Header().Set("Content-Type", "text/html")
		if v3 {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(code)
		return
	}
	if v3 {
		writeJSONError(w, code, err.Error())
		return
	}
	writeText(w, code, err.Error())
}

// writeText writes a plain string body as Logplex's legacy API does: with
// Content-Type text/html.
func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(code)
	if body != "" {
		_, _ = w.Write([]byte(body))
	}
}

// writeJSON writes v as application/json without a trailing newline and
// without HTML escaping (URLs keep their '&').
func writeJSON(w http.ResponseWriter, code int, v any) {
	writeJSONAs(w, code, "application/json", v)
}

// writeJSONAs is writeJSON with another content type (Logplex sends some
// JSON bodies as text/html).
func writeJSONAs(w http.ResponseWriter, code int, ctype string, v any) {
	b := marshal(v)
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only our own, always encodable values are marshalled
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// readBody reads a management API request body up to MaxAPIBody. On
// failure it has answered (413 for an oversize body) and returns false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil {
		return nil, true
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.conf.MaxAPIBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		} else {
			w.WriteHeader(http.StatusBadRequest)
		}
		return nil, false
	}
	return b, true
}

// channelIDJSON renders a channel id as Logplex's legacy API does: a JSON
// integer when the id is one, a string otherwise.
func channelIDJSON(id string) any {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil && strconv.FormatInt(n, 10) == id {
		return json.Number(id)
	}
	return id
}

// recorder remembers the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the recorder.
func (r *recorder) Flush() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// instrument counts requests by route template (bounded cardinality) and
// status, and logs them at debug level.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	label := routeLabel(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		code := rec.status()
		s.Metrics.apiRequests.WithLabelValues(label, strconv.Itoa(code)).Inc()
		if e := s.Logger.Debug(); e.Enabled() {
			e.Str("method", r.Method).Str("route", label).Int("status", code).
				Dur("duration", time.Since(start)).Str("remote_addr", r.RemoteAddr).Msg("api request")
		}
	})
}

// routeLabel drops the patterns from a mux template: "/v2/channels/{id}".
func routeLabel(tmpl string) string {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		b.WriteByte(c)
		if c != '{' {
			continue
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			break
		}
		name, _, _ := strings.Cut(tmpl[i+1:i+j], ":")
		b.WriteString(name)
		b.WriteByte('}')
		i += j
	}
	return b.String()
}
