package auth

import "context"

// Caller is who a request acts for: an API token (CLI, scripts) or a web
// UI user (whose requests the UI makes in-process, after it checked the
// session).
type Caller struct {
	// Token is the name of the API token that authenticated the request.
	Token string
	// User is the web UI user the request is made for.
	User string
}

// Name is the caller as recorded with what it asks for (appliedBy, an
// action's by): the token's name, or "user:<name>" for a web UI user.
func (c Caller) Name() string {
	if c.User != "" {
		return "user:" + c.User
	}
	return c.Token
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns the caller ctx carries (the zero Caller when none).
func CallerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}
