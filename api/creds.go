package api

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"
)

// Credentials API (a Plexus addition: Logplex operators wrote cred:<id>
// hashes into Redis by hand). Only the admin key may use it, not full_api
// credentials, so a credential cannot mint others. It follows the v3
// checks (API_STATUS applies).

type credBody struct {
	Name       string `json:"name"`
	FullAPI    bool   `json:"full_api"`
	AnyChannel bool   `json:"any_channel"`
}

// parseCredBody: {"name":"…","full_api":bool,"any_channel":bool}, every
// field optional; an empty body is {}.
func parseCredBody(w http.ResponseWriter, body []byte) (any, bool) {
	var in credBody
	if emptyBody(body) {
		return in, true
	}
	if _, ok := decodeObject(w, body); !ok {
		return nil, false
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid payload")
		return nil, false
	}
	return in, true
}

// createCred: POST /v3/creds → 201 {"id","pass","name","full_api","any_channel"}.
// The password is shown only here.
func (s *Server) createCred(w http.ResponseWriter, r *http.Request, in any) {
	req := in.(credBody)
	c, err := s.Store.CreateCred(r.Context(), req.Name, req.FullAPI, req.AnyChannel)
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.Logger.Info().Str("cred_id", c.ID).Str("name", c.Name).Bool("full_api", c.FullAPI).
		Bool("any_channel", c.AnyChannel).Msg("credential created")
	writeJSON(w, http.StatusCreated, c)
}

type credInfo struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	FullAPI    bool   `json:"full_api"`
	AnyChannel bool   `json:"any_channel"`
}

// listCreds: GET /v3/creds → 200 [{"id","name","full_api","any_channel"}] (no passwords).
func (s *Server) listCreds(w http.ResponseWriter, r *http.Request, _ any) {
	creds, err := s.Store.Creds(r.Context())
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	out := make([]credInfo, 0, len(creds))
	for _, c := range creds {
		out = append(out, credInfo{c.ID, c.Name, c.FullAPI, c.AnyChannel})
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteCred: DELETE /v3/creds/{cred} → 204 | 404.
func (s *Server) deleteCred(w http.ResponseWriter, r *http.Request, _ any) {
	id := mux.Vars(r)["cred"]
	if err := s.Store.DeleteCred(r.Context(), id); err != nil {
		s.v3Fail(w, r, err)
		return
	}
	s.Logger.Info().Str("cred_id", id).Msg("credential revoked")
	w.WriteHeader(http.StatusNoContent)
}
