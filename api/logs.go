package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/router"
	"github.com/plexus-router/plexus/syslog"
)

// HTTP log input (Logplex's port 8601).
//
// Logplex differences:
//   - All or nothing: with credential auth, a frame without a known token
//     fails the request (400 "Unknown token" or "Malformed log messages")
//     and nothing is stored; Logplex answered 204 and dropped such frames
//     silently. A 204 means every message is in the log.
//   - A truncated last frame is 400 "Malformed log messages" (Logplex
//     ignored it silently).
//   - Bodies over MaxBody (also after gunzip) are 413; Logplex crashed (500).
//   - Invalid base64 in Authorization is 401 (Logplex: 500).
//   - When the log cannot admit the messages within AppendTimeout the
//     answer is 503 with Retry-After: 1 (Logplex had no back-pressure).
//   - A request over its channel's rate limit (see channels.RateLimit) is
//     429 with Retry-After (whole seconds) and nothing of it is stored.
//   - The 400 answers do not carry Logplex's stray WWW-Authenticate header.
//   - Content-Encoding other than gzip or identity is 415.
//   - An Idempotency-Key header (not in Logplex) makes a retried batch
//     harmless: a batch whose key the channel already stored (within
//     channels.DedupWindow) is not stored again and is answered 204.

// LogsHandler serves the HTTP log input: POST /logs (and /logs/), and
// GET /healthcheck (any method, no auth).
func (s *Server) LogsHandler() http.Handler {
	s.init()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthcheck":
			s.healthcheck(w, r)
		case "/logs", "/logs/":
			code := s.postLogs(w, r)
			s.Metrics.logsRequest(code)
		default:
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("Not found"))
		}
	})
}

// logsAnswer writes a /logs answer: the text is the body, as Logplex.
func logsAnswer(w http.ResponseWriter, code int, text string) int {
	if text != "" {
		w.Header().Set("Content-Type", "text/plain")
	}
	w.WriteHeader(code)
	if text != "" {
		_, _ = w.Write([]byte(text))
	}
	return code
}

func unauthorized(w http.ResponseWriter) int {
	w.Header().Set("Www-Authenticate", "Basic realm=Logplex")
	return logsAnswer(w, http.StatusUnauthorized, "")
}

// logsAuth is who a /logs request is from: a token (all messages go to its
// channel) or an any_channel credential (each message goes where its own
// token says).
type logsAuth struct {
	route channels.Route
	token bool
}

// authenticate checks the Authorization of a /logs request. The admin key
// is not accepted here (Logplex). code is 0 on success.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (logsAuth, int) {
	p, ok := basicParam(r)
	if !ok {
		return logsAuth{}, unauthorized(w)
	}
	user, pass, ok := decodeBasic(p)
	if !ok {
		return logsAuth{}, unauthorized(w)
	}
	if user == "token" && strings.HasPrefix(pass, "t.") {
		rt, ok := s.Store.LookupToken([]byte(pass))
		if !ok {
			return logsAuth{}, unauthorized(w)
		}
		return logsAuth{route: rt, token: true}, 0
	}
	c, ok := s.checkCred(user, pass)
	if !ok {
		return logsAuth{}, unauthorized(w)
	}
	if !c.AnyChannel {
		return logsAuth{}, logsAnswer(w, http.StatusForbidden, "Credential not permitted to write to any channel.")
	}
	return logsAuth{}, 0
}

// acceptsText reports whether an Accept header admits text/plain (cowboy's
// 406 check in Logplex).
func acceptsText(accept string) bool {
	if accept == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt != "text/plain" && mt != "text/*" && mt != "*/*" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				continue
			}
		}
		return true
	}
	return false
}

// postLogs handles one POST /logs in Logplex's order and returns the status.
func (s *Server) postLogs(w http.ResponseWriter, r *http.Request) int {
	if s.conf.DenyIngress {
		return logsAnswer(w, http.StatusServiceUnavailable, "")
	}
	if s.stopping.Load() {
		// The node is stopping its input: send to another one.
		w.Header().Set("Retry-After", "1")
		return logsAnswer(w, http.StatusServiceUnavailable, "SHUTTING DOWN")
	}
	if !s.Store.Ready() {
		// Tokens are not known until the config is loaded: refuse rather
		// than answer 401 for tokens that exist.
		w.Header().Set("Retry-After", "1")
		return logsAnswer(w, http.StatusServiceUnavailable, "SYSTEM BOOTING")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return logsAnswer(w, http.StatusMethodNotAllowed, "")
	}
	auth, code := s.authenticate(w, r)
	if code != 0 {
		return code
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/logplex-1" && ct != "application/x-logplex-1" {
		return logsAnswer(w, http.StatusUnsupportedMediaType, "")
	}
	if !acceptsText(r.Header.Get("Accept")) {
		return logsAnswer(w, http.StatusNotAcceptable, "")
	}
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		return logsAnswer(w, http.StatusUnsupportedMediaType, "")
	}

	raw := s.getBody()
	defer s.putBody(raw)
	if r.ContentLength > s.conf.MaxBody {
		return logsAnswer(w, http.StatusRequestEntityTooLarge, "Request body too large")
	}
	var err error
	if *raw, err = readLimited(*raw, r.Body, r.ContentLength, s.conf.MaxBody); err != nil {
		if errors.Is(err, errTooLarge) {
			return logsAnswer(w, http.StatusRequestEntityTooLarge, "Request body too large")
		}
		return logsAnswer(w, http.StatusBadRequest, "Bad request")
	}
	body := *raw
	if gz {
		plain := s.getBody()
		defer s.putBody(plain)
		if *plain, err = s.gunzip(*plain, body); err != nil {
			if errors.Is(err, errTooLarge) {
				return logsAnswer(w, http.StatusRequestEntityTooLarge, "Request body too large")
			}
			return logsAnswer(w, http.StatusBadRequest, "Bad request")
		}
		body = *plain
	}

	key := r.Header.Get("Idempotency-Key")
	if !validIdempotencyKey(key) {
		return logsAnswer(w, http.StatusBadRequest, "Bad Idempotency-Key")
	}
	in := s.Router.Ingester()
	defer in.Release()
	in.SetKey(key)
	var addErr error
	var bad []byte // the message that failed, for the taps of dropped input
	n, err := syslog.SplitOctets(body, s.conf.MaxFrame, func(msg []byte) {
		if addErr != nil {
			return
		}
		if auth.token {
			addErr = in.AddRoute(auth.route, msg)
		} else {
			addErr = in.Add(msg)
		}
		if addErr != nil {
			bad = msg // a slice of body: valid until the handler returns
		}
	})
	if err != nil {
		s.countInput(n, 0, "malformed")
		s.dropped(r, router.DropMalformed, nil, n)
		return logsAnswer(w, http.StatusBadRequest, "Malformed log messages")
	}
	if c := r.Header.Get("Logplex-Msg-Count"); c != "" {
		if want, err := strconv.Atoi(strings.TrimSpace(c)); err != nil || want != n {
			s.countInput(n, 0, "count_mismatch")
			return logsAnswer(w, http.StatusBadRequest, "Message count mismatch")
		}
	}
	switch {
	case errors.Is(addErr, router.ErrUnknownToken):
		s.countInput(n, 0, "unknown_token")
		s.dropped(r, router.DropUnknownToken, bad, n)
		return logsAnswer(w, http.StatusBadRequest, "Unknown token")
	case addErr != nil:
		s.countInput(n, 0, "malformed")
		s.dropped(r, router.DropMalformed, bad, n)
		return logsAnswer(w, http.StatusBadRequest, "Malformed log messages")
	}
	if ok, wait := in.TakeLimits(); !ok {
		// Over a channel's rate limit: nothing of the request is stored.
		s.countInput(n, 0, "rate_limit")
		s.dropped(r, router.DropRateLimit, nil, n)
		w.Header().Set("Retry-After", retryAfterSeconds(wait))
		return logsAnswer(w, http.StatusTooManyRequests, "Rate limit exceeded")
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.conf.AppendTimeout)
	defer cancel()
	// 204 is a promise: answer once the messages are durable.
	err = in.CommitDurable(ctx)
	if err != nil {
		s.countInput(n, 0, "log_full")
		s.dropped(r, router.DropLogFull, nil, n)
		code := httpStatus(err)
		if code == http.StatusServiceUnavailable || errors.Is(err, context.DeadlineExceeded) {
			w.Header().Set("Retry-After", "1")
			return logsAnswer(w, http.StatusServiceUnavailable, "")
		}
		s.Logger.Error().Err(err).Msg("append http input")
		return logsAnswer(w, http.StatusInternalServerError, "")
	}
	s.countInput(n, n, "")
	s.Metrics.logsMessages.Add(float64(n))
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// dropped reports a refused request's messages to the router's log of
// dropped input and its taps (msg: the one that failed, if known).
func (s *Server) dropped(r *http.Request, reason router.DropReason, msg []byte, n int) {
	if s.Router != nil && n > 0 {
		s.Router.Drop(reason, "http", r.RemoteAddr, msg, n)
	}
}

// countInput adds one request's messages to the router's counters.
func (s *Server) countInput(received, stored int, reason string) {
	if s.RouterMetrics != nil && received > 0 {
		s.RouterMetrics.Count("http", received, stored, reason)
	}
}

// MaxIdempotencyKey bounds the Idempotency-Key header of POST /logs.
const MaxIdempotencyKey = 256

// validIdempotencyKey accepts no key, or 1 to MaxIdempotencyKey printable
// ASCII characters.
func validIdempotencyKey(k string) bool {
	if len(k) > MaxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

var errTooLarge = errors.New("body too large")

// readLimited reads r into buf (reset) and fails with errTooLarge beyond
// limit bytes.
func readLimited(buf []byte, r io.Reader, sizeHint, limit int64) ([]byte, error) {
	buf = buf[:0]
	if sizeHint > 0 && int64(cap(buf)) < sizeHint+1 {
		buf = make([]byte, 0, sizeHint+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if int64(len(buf)) > limit {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// gunzip decompresses src into dst (reset), at most MaxBody bytes.
func (s *Server) gunzip(dst, src []byte) ([]byte, error) {
	zr, _ := s.gzips.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(src))
	} else {
		err = zr.Reset(bytes.NewReader(src))
	}
	if err != nil {
		return dst, err
	}
	defer s.gzips.Put(zr)
	return readLimited(dst, zr, 0, s.conf.MaxBody)
}

// Body buffers are pooled; unusually large ones are not kept.
const keepBodyBuffer = 1 << 20

func (s *Server) getBody() *[]byte {
	if b, ok := s.bodies.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 32<<10)
	return &b
}

func (s *Server) putBody(b *[]byte) {
	if cap(*b) > keepBodyBuffer {
		return
	}
	*b = (*b)[:0]
	s.bodies.Put(b)
}
