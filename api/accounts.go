package api

import "time"

// The bodies of the user and token routes (docs/api.md, "Users and API
// tokens"), shared by package api/server and package api/client. Secrets
// travel one way only: a password in a request, a new token's value once
// in the answer that creates it; neither is ever read back.

// User is a web UI user as the API shows it: never a password hash.
type User struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// UserList is the answer of GET /api/v1/users, sorted by name.
type UserList struct {
	Items []User `json:"items"`
}

// CreateUserRequest is the body of POST /api/v1/users.
type CreateUserRequest struct {
	Name string `json:"name"`
	// Password is at least 8 characters and at most 72 bytes; only its
	// bcrypt hash is stored.
	Password string `json:"password"`
}

// Token is an API token as the API shows it: never its value or hash.
type Token struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// TokenList is the answer of GET /api/v1/tokens, sorted by name.
type TokenList struct {
	Items []Token `json:"items"`
}

// CreateTokenRequest is the body of POST /api/v1/tokens.
type CreateTokenRequest struct {
	Name string `json:"name"`
}

// NewToken is the answer of POST /api/v1/tokens: the one time the token's
// value is shown (only its hash is stored).
type NewToken struct {
	Token
	// Value is the token to send as "Authorization: Bearer <value>".
	Value string `json:"token"`
}
