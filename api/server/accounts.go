package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/store"
)

// maxAccountBody bounds the body of a user or token request.
const maxAccountBody = 64 << 10

// accountRoutes adds the routes of web UI users and API tokens, which the
// CLI (bakery token) and the UI's settings page share.
func (s *Server) accountRoutes(r *mux.Router) {
	const v1 = "/api/v1"
	r.Handle(v1+"/users", s.wrap(http.StatusOK, s.listUsers)).Methods(http.MethodGet)
	r.Handle(v1+"/users", s.wrap(http.StatusCreated, s.createUser)).Methods(http.MethodPost)
	r.Handle(v1+"/users/{name}", s.wrap(http.StatusOK, s.deleteUser)).Methods(http.MethodDelete)
	r.Handle(v1+"/tokens", s.wrap(http.StatusOK, s.listTokens)).Methods(http.MethodGet)
	r.Handle(v1+"/tokens", s.wrap(http.StatusCreated, s.createToken)).Methods(http.MethodPost)
	r.Handle(v1+"/tokens/{name}", s.wrap(http.StatusOK, s.revokeToken)).Methods(http.MethodDelete)
}

// decodeJSON decodes r's JSON body strictly (unknown fields are errors)
// into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAccountBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "body: %v", err)
	}
	return nil
}

// accountsError maps the errors of package auth that are the server's
// configuration, not the request's.
func accountsError(err error) error {
	if errors.Is(err, auth.ErrNoAccounts) {
		return errorf(http.StatusServiceUnavailable, "%v", err)
	}
	return err
}

func userOut(u store.User) api.User { return api.User{Name: u.Name, CreatedAt: u.CreatedAt} }

func tokenOut(t store.Token) api.Token { return api.Token{Name: t.Name, CreatedAt: t.CreatedAt} }

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) (any, error) {
	us, err := s.auth.ListUsers(r.Context())
	if err != nil {
		return nil, accountsError(err)
	}
	out := api.UserList{Items: []api.User{}}
	for _, u := range us {
		out.Items = append(out.Items, userOut(u))
	}
	return out, nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) (any, error) {
	var in api.CreateUserRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return nil, err
	}
	u, err := s.auth.CreateUser(r.Context(), in.Name, in.Password)
	if err != nil {
		return nil, accountsError(err)
	}
	s.log.Info("user created", "user", u.Name, "by", TokenName(r.Context()))
	return userOut(u), nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) (any, error) {
	name := mux.Vars(r)["name"]
	if name == uiUser(r.Context()) {
		return nil, errorf(http.StatusBadRequest, "you cannot delete yourself")
	}
	u, err := s.auth.DeleteUser(r.Context(), name)
	if err != nil {
		return nil, accountsError(err)
	}
	s.log.Info("user deleted", "user", name, "by", TokenName(r.Context()))
	return userOut(u), nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) (any, error) {
	ts, err := s.auth.ListTokens(r.Context())
	if err != nil {
		return nil, err
	}
	out := api.TokenList{Items: []api.Token{}}
	for _, t := range ts {
		out.Items = append(out.Items, tokenOut(t))
	}
	return out, nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) (any, error) {
	var in api.CreateTokenRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return nil, err
	}
	secret, t, err := s.auth.CreateToken(r.Context(), in.Name)
	if err != nil {
		return nil, err
	}
	s.log.Info("token created", "token", t.Name, "by", TokenName(r.Context()))
	return api.NewToken{Token: tokenOut(t), Value: secret}, nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) (any, error) {
	t, err := s.auth.RevokeToken(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		return nil, err
	}
	s.log.Info("token revoked", "token", t.Name, "by", TokenName(r.Context()))
	return tokenOut(t), nil
}
