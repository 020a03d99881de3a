package api

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/plexus-router/plexus/channels"
)

// basicParam returns what follows "Basic " in the Authorization header
// (scheme matched case-insensitively).
func basicParam(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 6 || !strings.EqualFold(h[:6], "Basic ") {
		return "", false
	}
	return strings.TrimSpace(h[6:]), true
}

// decodeBasic decodes a base64 "user:pass" pair.
func decodeBasic(p string) (user, pass string, ok bool) {
	b, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(b), ":")
}

// isAdmin reports whether the request carries the admin key:
// "Authorization: Basic <AuthKey>", the key compared as an opaque string
// (not base64-decoded), in constant time.
func (s *Server) isAdmin(r *http.Request) bool {
	p, ok := basicParam(r)
	return ok && s.conf.AuthKey != "" &&
		subtle.ConstantTimeCompare([]byte(p), []byte(s.conf.AuthKey)) == 1
}

// authorized reports whether the request may use the management API: the
// admin key, or the base64 id:pass of a credential with full_api.
func (s *Server) authorized(r *http.Request) bool {
	if s.isAdmin(r) {
		return true
	}
	p, ok := basicParam(r)
	if !ok {
		return false
	}
	c, ok := s.credential(p)
	return ok && c.FullAPI
}

// credential checks a base64 id:pass against the credentials.
func (s *Server) credential(p string) (channels.Cred, bool) {
	id, pass, ok := decodeBasic(p)
	if !ok {
		return channels.Cred{}, false
	}
	return s.checkCred(id, pass)
}

func (s *Server) checkCred(id, pass string) (channels.Cred, bool) {
	c, ok := s.Store.LookupCred(id)
	if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(c.Pass)) != 1 {
		return channels.Cred{}, false
	}
	return c, true
}
