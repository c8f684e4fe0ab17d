// Package auth is Bakery's one authentication package: who may call the
// API and the web UI, and how that is checked.
//
// It keeps the machinery both front doors share, on top of the store's
// [store.Tokens] and [store.Accounts]:
//
//   - API tokens: minted with a recognisable prefix ([NewToken]), stored
//     only as a hash ([HashToken]), looked up in constant time
//     ([Auth.CheckBearer]), created, listed and revoked by name, and the
//     first "admin" token bootstrapped on a fresh store
//     ([EnsureAdminToken]).
//   - Web UI users and sessions: password rules and bcrypt hashes
//     ([HashPassword], [CreateUser]), login with a per-account and
//     per-address attempt limit ([Auth.Login], [Limiter]), sessions whose
//     secret only the browser keeps ([Auth.StartSession], [Auth.Session]).
//   - The caller a request acts for, in its context ([WithCaller],
//     [CallerOf]): an API token's name or a web UI user.
//
// It is not HTTP plumbing: package api/server owns the bearer-token
// middleware and its list of exceptions, package api/ui the cookies, the
// CSRF checks and the login pages; both are thin users of this package.
// It does not store anything itself.
package auth
