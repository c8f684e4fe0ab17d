package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"bakery.dev/bakery/api"
)

// PushPayload is what Bakery reads of a push webhook.
type PushPayload struct {
	// Ref is the full ref pushed (refs/heads/main, refs/tags/v1).
	Ref string
	// After is the commit the ref points to now; all zeros when deleted.
	After string
	// Repos names the repository every way the payload does (clone URL,
	// SSH URL, …), for matching against sources.
	Repos []string
}

// maxPayloadString bounds every string Bakery keeps from a payload.
const maxPayloadString = 2048

// githubPush is the part of GitHub's push event payload Bakery reads
// (https://docs.github.com/en/webhooks/webhook-events-and-payloads#push).
type githubPush struct {
	Ref        *string `json:"ref"`
	After      *string `json:"after"`
	Deleted    bool    `json:"deleted"`
	Repository *struct {
		FullName string `json:"full_name"`
		CloneURL string `json:"clone_url"`
		SSHURL   string `json:"ssh_url"`
		GitURL   string `json:"git_url"`
		HTMLURL  string `json:"html_url"`
		URL      string `json:"url"`
	} `json:"repository"`
}

// genericPush is the payload of the generic webhook.
type genericPush struct {
	Repo  string `json:"repo"`
	Ref   string `json:"ref"`
	After string `json:"after"`
}

var errNotObject = errors.New("the payload must be a JSON object")

// ParseGitHubPush reads a GitHub push event payload. It refuses what
// Bakery cannot act on: no ref, a ref outside refs/heads/ and refs/tags/,
// an "after" that is not a full commit id, or no repository URL.
func ParseGitHubPush(body []byte) (PushPayload, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return PushPayload{}, errNotObject
	}
	var g githubPush
	if err := json.Unmarshal(body, &g); err != nil {
		return PushPayload{}, fmt.Errorf("payload: %w", err)
	}
	if g.Ref == nil {
		return PushPayload{}, errors.New("payload: ref: is required")
	}
	if g.After == nil {
		return PushPayload{}, errors.New("payload: after: is required")
	}
	p := PushPayload{Ref: *g.Ref, After: *g.After}
	if r := g.Repository; r != nil {
		for _, u := range []string{r.CloneURL, r.SSHURL, r.GitURL, r.HTMLURL, r.URL} {
			if u != "" {
				p.Repos = append(p.Repos, u)
			}
		}
	}
	return p, p.check()
}

// ParseGenericPush reads the generic webhook's payload:
// {"repo": URL-or-path, "ref": "refs/heads/main", "after": commit}.
func ParseGenericPush(body []byte) (PushPayload, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return PushPayload{}, errNotObject
	}
	var g genericPush
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return PushPayload{}, fmt.Errorf("payload: %w", err)
	}
	if dec.More() {
		return PushPayload{}, errors.New("payload: more than one JSON value")
	}
	p := PushPayload{Ref: g.Ref, After: g.After}
	if g.Repo != "" {
		p.Repos = []string{g.Repo}
	}
	if !strings.HasPrefix(p.Ref, "refs/") && p.Ref != "" {
		p.Ref = "refs/heads/" + p.Ref // a branch name
	}
	return p, p.check()
}

func (p PushPayload) check() error {
	switch {
	case p.Ref == "":
		return errors.New("payload: ref: is required")
	case !strings.HasPrefix(p.Ref, "refs/heads/") && !strings.HasPrefix(p.Ref, "refs/tags/"):
		return fmt.Errorf("payload: ref: %q is neither refs/heads/… nor refs/tags/…", clip(p.Ref))
	case !cleanString(p.Ref) || strings.Contains(p.Ref, ".."):
		return errors.New("payload: ref: not a valid ref name")
	case !api.IsCommitID(p.After):
		return fmt.Errorf("payload: after: %q is not a full commit id", clip(p.After))
	case len(p.Repos) == 0:
		return errors.New("payload: repository: no URL")
	}
	for _, r := range p.Repos {
		if !cleanString(r) {
			return errors.New("payload: repository: not a valid URL")
		}
	}
	return nil
}

func cleanString(s string) bool {
	if s == "" || len(s) > maxPayloadString || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
