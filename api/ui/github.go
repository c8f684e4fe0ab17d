package ui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

// The deployment editor's GitHub panel: sign in to GitHub (per UI user),
// pick one of the user's repositories and a branch, and put them into the
// spec's source; optionally register the push webhook. Everything goes
// through the API's /api/v1/github routes in-process.

// githubLogin starts a GitHub sign-in for the user: the API mints the
// state for this user and the browser goes to GitHub, which sends it back
// to the API's callback, which sends it back to next. A link, not a form:
// the CSP's form-action 'self' would stop a form's redirect to GitHub.
func (u *UI) githubLogin(w http.ResponseWriter, r *http.Request, s *session) {
	next := safeNext(r.URL.Query().Get("next"))
	to, err := u.client(r).GitHubLoginFor(r.Context(), next)
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "GitHub sign-in: "+err.Error())
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

type githubReposData struct {
	SignIn string // the sign-in link when the user is not signed in
	Error  string
	Repos  []api.GitHubRepo
}

// githubRepos is the panel's repository list (an htmx fragment).
func (u *UI) githubRepos(w http.ResponseWriter, r *http.Request, s *session) {
	d := githubReposData{}
	repos, err := u.client(r).GitHubRepos(r.Context())
	switch {
	case apiCode(err) == http.StatusUnauthorized:
		d.SignIn = Prefix + "/github/login?" + url.Values{"next": {safeNext(r.URL.Query().Get("next"))}}.Encode()
	case err != nil:
		d.Error, _ = problems(err)
	default:
		d.Repos = repos
	}
	u.render(w, r, http.StatusOK, "editor", "gh-repos", page{CSRF: s.CSRF, Data: d})
}

type githubBranchesData struct {
	Error    string
	Repo     *api.GitHubRepo
	Branches []api.GitHubBranch
}

// githubBranches is the chosen repository's branches and clone URLs (an
// htmx fragment).
func (u *UI) githubBranches(w http.ResponseWriter, r *http.Request, s *session) {
	d := githubBranchesData{}
	name := r.URL.Query().Get("ghrepo")
	if name != "" {
		c := u.client(r)
		repo, err := c.GitHubRepoInfo(r.Context(), name)
		if err == nil {
			d.Repo = repo
			d.Branches, err = c.GitHubBranches(r.Context(), name)
		}
		if err != nil {
			d.Error, _ = problems(err)
		}
	}
	u.render(w, r, http.StatusOK, "editor", "gh-branches", page{CSRF: s.CSRF, Data: d})
}

type githubHookData struct {
	Error string
	Hook  *api.GitHubHook
	Repo  string
}

// githubHook registers the push webhook on the chosen repository (an htmx
// fragment with the outcome).
func (u *UI) githubHook(w http.ResponseWriter, r *http.Request, s *session) {
	d := githubHookData{Repo: r.PostFormValue("ghrepo")}
	h, err := u.client(r).GitHubCreateHook(r.Context(), d.Repo)
	if err != nil {
		d.Error, _ = problems(err)
	} else {
		d.Hook = h
		u.log.Info("ui: GitHub webhook registered", "repo", d.Repo, "user", s.User)
	}
	u.render(w, r, http.StatusOK, "editor", "gh-hook", page{CSRF: s.CSRF, Data: d})
}

// apiCode is the HTTP status of an API error, or 0.
func apiCode(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// setSource sets spec.source.repo and .ref of the one Deployment in the
// YAML text src (a branch is followed, so a pinned commit is dropped),
// keeping the other documents, the order of keys and the comments.
func setSource(src, repo, ref string) (string, error) {
	if repo == "" || ref == "" {
		return "", errors.New("choose a repository and a branch first")
	}
	dec := yaml.NewDecoder(strings.NewReader(src))
	var docs []*yaml.Node
	var deps []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("the YAML does not parse: %v", err)
		}
		docs = append(docs, &doc)
		if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
			if k := mapValue(doc.Content[0], "kind"); k != nil && k.Value == api.KindDeployment {
				deps = append(deps, doc.Content[0])
			}
		}
	}
	switch len(deps) {
	case 0:
		return "", errors.New("there is no Deployment in the spec to set the source of")
	case 1:
	default:
		return "", fmt.Errorf("there are %d Deployments in the spec: set spec.source by hand", len(deps))
	}
	spec, err := mapChild(deps[0], "spec")
	if err != nil {
		return "", err
	}
	source, err := mapChild(spec, "source")
	if err != nil {
		return "", err
	}
	setScalar(source, "repo", repo)
	setScalar(source, "ref", ref)
	removeKey(source, "commit")
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return "", err
		}
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// mapValue returns the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// mapChild returns the mapping under key in m, adding an empty one when
// there is none.
func mapChild(m *yaml.Node, key string) (*yaml.Node, error) {
	v := mapValue(m, key)
	if v == nil {
		v = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
		return v, nil
	}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: v.Style & yaml.FlowStyle}
	}
	if v.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: must be a mapping to set the source in it", key)
	}
	return v, nil
}

// setScalar sets key of mapping m to the string value.
func setScalar(m *yaml.Node, key, value string) {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	if v := mapValue(m, key); v != nil {
		n.HeadComment, n.LineComment, n.FootComment = v.HeadComment, v.LineComment, v.FootComment
		*v = *n
		return
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, n)
}

// removeKey removes key from mapping m.
func removeKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}
