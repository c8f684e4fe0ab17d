// Package github is Bakery's client of GitHub: the OAuth web flow of an
// OAuth app (authorize URL, code exchange) and the few REST calls the
// GitHub integration makes with a user's token (who am I, list
// repositories, one repository, its branches, register a push webhook).
// It works as well against GitHub Enterprise (WebURL, APIURL).
//
// It is not the API routes (api/server serves /api/v1/github/… with it and
// keeps the users' tokens, sealed) and not the webhook receiver. Answers
// are the API's wire types (api.GitHubRepo, api.GitHubBranch). A failed
// call is an *Error carrying the HTTP status the API answers with.
package github
