package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"bakery.dev/bakery/api"
)

// Users returns the web UI's users, sorted by name.
func (c *Client) Users(ctx context.Context) ([]api.User, error) {
	var out api.UserList
	if err := c.do(ctx, http.MethodGet, "/api/v1/users", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// CreateUser creates a web UI user with a password (at least 8
// characters; only its hash is stored).
func (c *Client) CreateUser(ctx context.Context, name, password string) (*api.User, error) {
	body, err := jsonBody(api.CreateUserRequest{Name: name, Password: password})
	if err != nil {
		return nil, err
	}
	var out api.User
	if err := c.do(ctx, http.MethodPost, "/api/v1/users", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteUser removes a web UI user and ends their sessions.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("delete user: no name given")
	}
	return c.do(ctx, http.MethodDelete, "/api/v1/users/"+url.PathEscape(name), nil, nil, nil)
}

// Tokens returns the API tokens (names and creation times; values are
// never shown again), sorted by name.
func (c *Client) Tokens(ctx context.Context) ([]api.Token, error) {
	var out api.TokenList
	if err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// CreateToken creates the API token name and returns it with its value:
// the only time the value is shown (the server keeps its hash).
func (c *Client) CreateToken(ctx context.Context, name string) (*api.NewToken, error) {
	body, err := jsonBody(api.CreateTokenRequest{Name: name})
	if err != nil {
		return nil, err
	}
	var out api.NewToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeToken deletes the API token name: requests carrying it get 401
// from then on.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("revoke token: no name given")
	}
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(name), nil, nil, nil)
}

// jsonBody is v as a JSON request body.
func jsonBody(v any) (*reqBody, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &reqBody{data: b, contentType: "application/json"}, nil
}
