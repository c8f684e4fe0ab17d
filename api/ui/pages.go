package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/manifests"
)

// problem is one error shown next to a field.
type problem struct{ Field, Reason string }

// problems turns an error from the API into what the page shows: its
// message and, for bad input, every field path with its reason.
func problems(err error) (string, []problem) {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		return err.Error(), nil
	}
	msg := ae.Message
	if msg == "" {
		msg = http.StatusText(ae.Code)
	}
	var ps []problem
	for _, d := range ae.Details {
		ps = append(ps, problem{Field: d.Field, Reason: d.Reason})
	}
	return msg, ps
}

// apiStatus is the HTTP status a page answers for an API error.
func apiStatus(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code >= 400 {
		return ae.Code
	}
	return http.StatusInternalServerError
}

func (u *UI) pageFor(s *session, title, nav string, data any) page {
	return page{Title: title, Nav: nav, User: s.User, CSRF: s.CSRF, Data: data}
}

// isHTMX reports whether r was sent by htmx (which swaps a fragment).
func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// ---- nodes ----

type nodesData struct{ Nodes []*api.Node }

func (u *UI) nodesPage(w http.ResponseWriter, r *http.Request, s *session) {
	objs, err := u.client(r).List(r.Context(), api.KindNode, "")
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "List nodes: "+err.Error())
		return
	}
	d := nodesData{}
	for _, o := range objs {
		d.Nodes = append(d.Nodes, o.(*api.Node))
	}
	u.render(w, r, http.StatusOK, "nodes", "", u.pageFor(s, "Nodes", "nodes", d))
}

// nodeForm is the node form's values.
type nodeForm struct {
	Name, Address, Port, User, Via, HostKey, Labels, ResourceVersion string
}

type nodeData struct {
	New       bool
	Node      *api.Node
	Form      nodeForm
	Problems  []problem
	Bootstrap *api.Bootstrap
	BootErr   string
	Verify    *verifyResult
}

type verifyResult struct {
	OK      bool
	Message string
	Node    *api.Node
}

func formOf(n *api.Node) nodeForm {
	var labels []string
	for k, v := range n.Metadata.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	port := ""
	if n.Spec.Port != 0 {
		port = strconv.Itoa(n.Spec.Port)
	}
	return nodeForm{
		Name: n.Metadata.Name, Address: n.Spec.Address, Port: port, User: n.Spec.User,
		Via: n.Spec.Via, HostKey: n.Spec.HostKey, Labels: strings.Join(labels, "\n"),
		ResourceVersion: n.Metadata.ResourceVersion,
	}
}

func (u *UI) nodeNewPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := nodeData{New: true, Form: nodeForm{Port: "22", User: "bakery-agent"}}
	u.render(w, r, http.StatusOK, "node", "", u.pageFor(s, "New node", "nodes", d))
}

// readNodeForm reads the form into n (keeping n's other fields).
func readNodeForm(r *http.Request, n *api.Node) (nodeForm, []problem) {
	f := nodeForm{
		Name:    strings.TrimSpace(r.PostFormValue("name")),
		Address: strings.TrimSpace(r.PostFormValue("address")),
		Port:    strings.TrimSpace(r.PostFormValue("port")),
		User:    strings.TrimSpace(r.PostFormValue("user")),
		Via:     strings.TrimSpace(r.PostFormValue("via")),
		HostKey: strings.TrimSpace(r.PostFormValue("hostKey")),
		Labels:  r.PostFormValue("labels"),
		// The version the form was made from: a node changed since is a
		// conflict, not silently overwritten.
		ResourceVersion: r.PostFormValue("resourceVersion"),
	}
	var ps []problem
	n.APIVersion, n.Kind = api.APIVersion, api.KindNode
	n.Metadata.Name = f.Name
	n.Metadata.ResourceVersion = f.ResourceVersion
	n.Spec.Address, n.Spec.User, n.Spec.Via, n.Spec.HostKey = f.Address, f.User, f.Via, f.HostKey
	n.Spec.Port = 0
	if f.Port != "" {
		p, err := strconv.Atoi(f.Port)
		if err != nil {
			ps = append(ps, problem{"spec.port", fmt.Sprintf("must be a number, not %q", f.Port)})
		}
		n.Spec.Port = p
	}
	n.Metadata.Labels = nil
	for i, line := range strings.Split(f.Labels, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			ps = append(ps, problem{"metadata.labels", fmt.Sprintf("line %d: want key=value, not %q", i+1, line)})
			continue
		}
		if n.Metadata.Labels == nil {
			n.Metadata.Labels = map[string]string{}
		}
		n.Metadata.Labels[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return f, ps
}

func (u *UI) nodeCreate(w http.ResponseWriter, r *http.Request, s *session) {
	n := &api.Node{}
	f, ps := readNodeForm(r, n)
	n.Metadata.ResourceVersion = ""
	d := nodeData{New: true, Form: f, Problems: ps}
	if len(ps) == 0 {
		_, err := u.client(r).Create(r.Context(), n)
		if err == nil {
			http.Redirect(w, r, Prefix+"/nodes/"+url.PathEscape(n.Metadata.Name)+"?created=1", http.StatusSeeOther)
			return
		}
		msg, more := problems(err)
		p := u.pageFor(s, "New node", "nodes", d)
		d.Problems = more
		p.Data, p.Error = d, msg
		u.render(w, r, apiStatus(err), "node", "", p)
		return
	}
	p := u.pageFor(s, "New node", "nodes", d)
	p.Error = "The node has errors."
	u.render(w, r, http.StatusBadRequest, "node", "", p)
}

// loadNode reads node name with its bootstrap command.
func (u *UI) loadNode(r *http.Request, name string) (nodeData, error) {
	c := u.client(r)
	o, err := c.Get(r.Context(), api.KindNode, name)
	if err != nil {
		return nodeData{}, err
	}
	n := o.(*api.Node)
	d := nodeData{Node: n, Form: formOf(n)}
	if b, err := c.NodeBootstrap(r.Context(), name); err != nil {
		d.BootErr, _ = problems(err)
	} else {
		d.Bootstrap = b
	}
	return d, nil
}

func (u *UI) nodePage(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	d, err := u.loadNode(r, name)
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "Node "+name+": "+err.Error())
		return
	}
	p := u.pageFor(s, "Node "+name, "nodes", d)
	if r.URL.Query().Get("created") != "" {
		p.Message = "Node " + name + " created. Run the bootstrap command on it, then verify."
	}
	if r.URL.Query().Get("saved") != "" {
		p.Message = "Node " + name + " saved."
	}
	u.render(w, r, http.StatusOK, "node", "", p)
}

func (u *UI) nodeUpdate(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	c := u.client(r)
	o, err := c.Get(r.Context(), api.KindNode, name)
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "Node "+name+": "+err.Error())
		return
	}
	n := o.(*api.Node)
	f, ps := readNodeForm(r, n)
	n.Metadata.Name = name // the name is not editable
	f.Name = name
	if len(ps) == 0 {
		if _, err = c.Replace(r.Context(), n); err == nil {
			http.Redirect(w, r, Prefix+"/nodes/"+url.PathEscape(name)+"?saved=1", http.StatusSeeOther)
			return
		}
	}
	d, lerr := u.loadNode(r, name)
	if lerr != nil {
		u.errorPage(w, r, s, apiStatus(lerr), "Node "+name+": "+lerr.Error())
		return
	}
	d.Form, d.Problems = f, ps
	p := u.pageFor(s, "Node "+name, "nodes", d)
	code := http.StatusBadRequest
	p.Error = "The node has errors."
	if err != nil {
		msg, more := problems(err)
		d.Problems = append(d.Problems, more...)
		p.Data, p.Error, code = d, msg, apiStatus(err)
	}
	u.render(w, r, code, "node", "", p)
}

func (u *UI) nodeDelete(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	if err := u.client(r).Delete(r.Context(), api.KindNode, name); err != nil {
		u.errorPage(w, r, s, apiStatus(err), "Delete node "+name+": "+err.Error())
		return
	}
	http.Redirect(w, r, Prefix+"/nodes", http.StatusSeeOther)
}

// nodeVerify runs the node check now (the API's verify: connect, echo
// bakery-ready, observe). htmx gets the result fragment, a plain form post
// the whole page.
func (u *UI) nodeVerify(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	res := &verifyResult{}
	n, err := u.client(r).VerifyNode(r.Context(), name)
	switch {
	case err != nil:
		res.Message, _ = problems(err)
	case !n.Status.Reachable:
		res.Node, res.Message = n, "unreachable: "+n.Status.LastError
	default:
		res.OK, res.Node, res.Message = true, n, "reachable: bakery-ready"
	}
	if isHTMX(r) {
		u.render(w, r, http.StatusOK, "node", "verify", page{CSRF: s.CSRF, Data: res})
		return
	}
	d, lerr := u.loadNode(r, name)
	if lerr != nil {
		u.errorPage(w, r, s, apiStatus(lerr), "Node "+name+": "+lerr.Error())
		return
	}
	d.Verify = res
	u.render(w, r, http.StatusOK, "node", "", u.pageFor(s, "Node "+name, "nodes", d))
}

// ---- deployments ----

// phase is a deployment's one-word status.
func phase(d *api.Deployment) string {
	is := func(t string) bool {
		c := api.FindCondition(d.Status.Conditions, t)
		return c != nil && c.Status == api.ConditionTrue
	}
	switch {
	case is(api.ConditionStalled):
		return "Stalled"
	case is(api.ConditionDegraded):
		return "Degraded"
	case is(api.ConditionProgressing):
		return "Progressing"
	case is(api.ConditionReady):
		return "Ready"
	}
	return "Unknown"
}

type deploymentRow struct {
	D     *api.Deployment
	Phase string
}

type deploymentsData struct{ Rows []deploymentRow }

func (u *UI) deploymentsPage(w http.ResponseWriter, r *http.Request, s *session) {
	objs, err := u.client(r).List(r.Context(), api.KindDeployment, "")
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "List deployments: "+err.Error())
		return
	}
	d := deploymentsData{}
	for _, o := range objs {
		dep := o.(*api.Deployment)
		d.Rows = append(d.Rows, deploymentRow{D: dep, Phase: phase(dep)})
	}
	u.render(w, r, http.StatusOK, "deployments", "", u.pageFor(s, "Deployments", "deployments", d))
}

type deploymentData struct {
	D        *api.Deployment
	Phase    string
	Rollouts []*api.Rollout
	Events   []*api.Event
	Latest   *api.Rollout
	// Pinned is the rollout whose log the panel shows instead of
	// following the newest (?rollout=ID).
	Pinned string
	// Traffic is the traffic card; Secrets the secrets the spec uses
	// (both on the full page only, not in the status refresh).
	Traffic    *trafficData
	Secrets    []secretRef
	SecretsErr string
}

func (u *UI) loadDeployment(r *http.Request, name string) (*deploymentData, error) {
	c := u.client(r)
	o, err := c.Get(r.Context(), api.KindDeployment, name)
	if err != nil {
		return nil, err
	}
	dep := o.(*api.Deployment)
	d := &deploymentData{D: dep, Phase: phase(dep)}
	if d.Rollouts, err = c.Rollouts(r.Context(), name, 10); err != nil {
		return nil, err
	}
	if len(d.Rollouts) > 0 {
		d.Latest = d.Rollouts[0]
	}
	if d.Events, err = c.Events(r.Context(), api.KindDeployment+"/"+name, 15); err != nil {
		return nil, err
	}
	return d, nil
}

func (u *UI) deploymentPage(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	d, err := u.loadDeployment(r, name)
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "Deployment "+name+": "+err.Error())
		return
	}
	if id := r.URL.Query().Get("rollout"); id != "" && store.CheckRolloutID(id) == nil {
		d.Pinned = id
	}
	d.Traffic = u.loadTraffic(r, name, r.URL.Query().Get("window"))
	if d.Secrets, err = u.secretRefs(r, d.D); err != nil {
		d.SecretsErr, _ = problems(err)
	}
	p := u.pageFor(s, "Deployment "+name, "deployments", d)
	if a := r.URL.Query().Get("done"); a != "" {
		p.Message = actionMessages[a]
	}
	if r.URL.Query().Get("applied") != "" {
		p.Message = "Applied: the control loop rolls the change out."
	}
	u.render(w, r, http.StatusOK, "deployment", "", p)
}

// deploymentStatus is the status part of the deployment page, which the
// page reloads every few seconds (htmx).
func (u *UI) deploymentStatus(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	d, err := u.loadDeployment(r, name)
	if err != nil {
		http.Error(w, err.Error(), apiStatus(err))
		return
	}
	u.render(w, r, http.StatusOK, "deployment", "status", u.pageFor(s, "", "", d))
}

// currentRollout answers the newest rollout's id and state as JSON, for
// the live log panel to follow a new rollout when one starts.
func (u *UI) currentRollout(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	ros, err := u.client(r).Rollouts(r.Context(), name, 1)
	if err != nil {
		http.Error(w, err.Error(), apiStatus(err))
		return
	}
	out := map[string]string{}
	if len(ros) > 0 {
		out["id"], out["state"] = ros[0].ID, ros[0].State
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

var actionMessages = map[string]string{
	"deploy":   "Deploy started: the newest commit of the branch is rolled out.",
	"redeploy": "Redeploy started: the last commit is rolled out again.",
	"restart":  "Restart started: the same revision moves to the other slot.",
	"rollback": "Rollback started: the previous revision (its spec and commit) is rolled out; new commits wait until you resume.",
	"resume":   "Resumed: the branch's newest commit is rolled out.",
}

func (u *UI) deploymentAction(w http.ResponseWriter, r *http.Request, s *session) {
	name, action := mux.Vars(r)["name"], mux.Vars(r)["action"]
	if _, err := u.client(r).DeploymentAction(r.Context(), name, api.Action(action), "", 0); err != nil {
		d, lerr := u.loadDeployment(r, name)
		if lerr != nil {
			u.errorPage(w, r, s, apiStatus(err), action+" "+name+": "+err.Error())
			return
		}
		p := u.pageFor(s, "Deployment "+name, "deployments", d)
		p.Error = action + ": " + err.Error()
		u.render(w, r, apiStatus(err), "deployment", "", p)
		return
	}
	http.Redirect(w, r, Prefix+"/deployments/"+url.PathEscape(name)+"?done="+action, http.StatusSeeOther)
}

func (u *UI) deploymentDelete(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	if err := u.client(r).Delete(r.Context(), api.KindDeployment, name); err != nil {
		u.errorPage(w, r, s, apiStatus(err), "Delete deployment "+name+": "+err.Error())
		return
	}
	http.Redirect(w, r, Prefix+"/deployments", http.StatusSeeOther)
}

// passThrough serves the API route path (with query q) to w in-process for
// the user of r: the SSE streams go straight through, so they keep their
// Last-Event-ID replay and heartbeats.
func (u *UI) passThrough(w http.ResponseWriter, r *http.Request, path string, q url.Values) {
	req := r.Clone(r.Context())
	req.URL = &url.URL{Path: path, RawQuery: q.Encode()}
	req.RequestURI = req.URL.RequestURI()
	req.Header = http.Header{"Accept": {"text/event-stream"}}
	if v, ok := r.Header["Last-Event-Id"]; ok {
		req.Header["Last-Event-Id"] = v
	}
	u.cfg.API.ServeHTTP(w, req)
}

func (u *UI) rolloutLogStream(w http.ResponseWriter, r *http.Request, s *session) {
	id := mux.Vars(r)["id"]
	if err := store.CheckRolloutID(id); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u.passThrough(w, r, "/api/v1/rollouts/"+id+"/logs/stream", nil)
}

func (u *UI) runtimeLogStream(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	if reason := api.ValidateName(name); reason != "" {
		http.Error(w, "deployment name: "+reason, http.StatusBadRequest)
		return
	}
	q := url.Values{"follow": {"true"}, "lines": {"100"}}
	u.passThrough(w, r, "/api/v1/deployments/"+url.PathEscape(name)+"/logs", q)
}

// ---- spec editor ----

// newDeploymentTemplate is the editor's text for a new deployment.
const newDeploymentTemplate = `apiVersion: bakery.dev/v1
kind: Deployment
metadata:
  name: my-app
spec:
  source:
    repo: /srv/git/my-app.git
    ref: main
  nodes: [web-1]
  build:
    install: ""
    test: ""
    build: ""
  runtime: systemd
  run:
    command: ./server
    env: []
  healthCheck:
    path: /healthz
    interval: 1s
    timeout: 2s
    retries: 10
  strategy:
    type: BlueGreen
  keepReleases: 3
`

type editorData struct {
	Name     string
	YAML     string
	Results  []api.ApplyResult
	DryRun   bool
	Problems []problem
	// GitHubRepos, when set, is where the GitHub panel loads the user's
	// repositories from (the server has the GitHub integration).
	GitHubRepos string
}

// withGitHub fills in the GitHub panel's source when GitHub is configured.
func (u *UI) withGitHub(d *editorData) {
	if !u.cfg.GitHub {
		return
	}
	next := Prefix + "/editor"
	if d.Name != "" {
		next += "?" + url.Values{"deployment": {d.Name}}.Encode()
	}
	d.GitHubRepos = Prefix + "/github/repos?" + url.Values{"next": {next}}.Encode()
}

// editable returns the YAML a user edits for o: no status, no fields the
// server sets.
func editable(o api.Object) (string, error) {
	c := o.DeepCopyObject()
	m := c.GetObjectMeta()
	*m = api.ObjectMeta{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations}
	switch v := c.(type) {
	case *api.Deployment:
		v.Status = api.DeploymentStatus{}
	case *api.Node:
		v.Status = api.NodeStatus{}
	}
	b, err := manifests.Encode(c)
	return string(b), err
}

func (u *UI) editorPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := editorData{YAML: newDeploymentTemplate}
	if name := r.URL.Query().Get("deployment"); name != "" {
		o, err := u.client(r).Get(r.Context(), api.KindDeployment, name)
		if err != nil {
			u.errorPage(w, r, s, apiStatus(err), "Deployment "+name+": "+err.Error())
			return
		}
		y, err := editable(o)
		if err != nil {
			u.errorPage(w, r, s, http.StatusInternalServerError, err.Error())
			return
		}
		d.Name, d.YAML = name, y
	}
	title := "New deployment"
	if d.Name != "" {
		title = "Edit " + d.Name
	}
	u.withGitHub(&d)
	p := u.pageFor(s, title, "editor", d)
	switch r.URL.Query().Get("github") {
	case "signed-in":
		p.Message = "Signed in to GitHub: choose a repository and a branch."
	case "failed":
		p.Error = "The GitHub sign-in failed (the server's log says why); try again."
	}
	u.render(w, r, http.StatusOK, "editor", "", p)
}

// editorPost runs the server-side apply: a dry run for Diff, the real one
// for Apply. Bad YAML or specs come back with every field path. Action
// "source" first puts the repository and branch chosen in the GitHub panel
// into the spec, then shows the diff.
func (u *UI) editorPost(w http.ResponseWriter, r *http.Request, s *session) {
	d := editorData{Name: r.PostFormValue("name"), YAML: r.PostFormValue("yaml")}
	action := r.PostFormValue("action")
	d.DryRun = action != "apply"
	title := "New deployment"
	if d.Name != "" {
		title = "Edit " + d.Name
	}
	u.withGitHub(&d)
	p := u.pageFor(s, title, "editor", nil)
	code := http.StatusOK
	if action == "source" {
		y, err := setSource(d.YAML, r.PostFormValue("ghurl"), r.PostFormValue("ghref"))
		if err != nil {
			p.Data, p.Error = d, "Set the source: "+err.Error()
			u.render(w, r, http.StatusBadRequest, "editor", "", p)
			return
		}
		d.YAML = y
		p.Message = "Source set to " + r.PostFormValue("ghurl") + " (" + r.PostFormValue("ghref") + "): the diff shows the change; Apply stores it."
	}
	res, err := u.client(r).ApplyBundle(r.Context(), []byte(d.YAML), d.DryRun)
	switch {
	case err != nil:
		p.Error, d.Problems = problems(err)
		code = apiStatus(err)
	case !d.DryRun && len(res.Results) == 1 && res.Results[0].Kind == api.KindDeployment:
		http.Redirect(w, r, Prefix+"/deployments/"+url.PathEscape(res.Results[0].Name)+"?applied=1", http.StatusSeeOther)
		return
	default:
		d.Results = res.Results
		if !d.DryRun {
			p.Message = "Applied."
		}
	}
	p.Data = d
	u.render(w, r, code, "editor", "", p)
}

// ---- settings ----

type settingsData struct {
	Users    []api.User
	Tokens   []api.Token
	Notify   []string
	NewToken string // shown once
	NewName  string
}

// settings renders the settings page; users and tokens come from the API
// (GET /api/v1/users, /api/v1/tokens), as the CLI sees them.
func (u *UI) settings(w http.ResponseWriter, r *http.Request, s *session, code int, msg, errMsg string, d settingsData) {
	c := u.client(r)
	var err error
	if d.Users, err = c.Users(r.Context()); err == nil {
		d.Tokens, err = c.Tokens(r.Context())
	}
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "Read settings: "+err.Error())
		return
	}
	d.Notify = u.cfg.Notify
	p := u.pageFor(s, "Settings", "settings", d)
	p.Message, p.Error = msg, errMsg
	u.render(w, r, code, "settings", "", p)
}

// settingsFailed renders the settings page with what failed: the API's
// message and status.
func (u *UI) settingsFailed(w http.ResponseWriter, r *http.Request, s *session, what string, err error) {
	msg, _ := problems(err)
	u.settings(w, r, s, apiStatus(err), "", what+": "+msg, settingsData{})
}

func (u *UI) settingsPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.settings(w, r, s, http.StatusOK, "", "", settingsData{})
}

func (u *UI) userCreate(w http.ResponseWriter, r *http.Request, s *session) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if _, err := u.client(r).CreateUser(r.Context(), name, r.PostFormValue("password")); err != nil {
		u.settingsFailed(w, r, s, "Create user "+name, err)
		return
	}
	u.settings(w, r, s, http.StatusOK, "User "+name+" created.", "", settingsData{})
}

func (u *UI) userDelete(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["user"]
	if name == s.User {
		u.settings(w, r, s, http.StatusBadRequest, "", "You cannot delete yourself.", settingsData{})
		return
	}
	if err := u.client(r).DeleteUser(r.Context(), name); err != nil {
		u.settingsFailed(w, r, s, "Delete user "+name, err)
		return
	}
	u.settings(w, r, s, http.StatusOK, "User "+name+" deleted; their sessions ended.", "", settingsData{})
}

func (u *UI) tokenCreate(w http.ResponseWriter, r *http.Request, s *session) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	t, err := u.client(r).CreateToken(r.Context(), name)
	if err != nil {
		u.settingsFailed(w, r, s, "Create token "+name, err)
		return
	}
	u.settings(w, r, s, http.StatusOK, "Token "+name+" created. Copy it now: it is not shown again.", "", settingsData{NewToken: t.Value, NewName: t.Name})
}

func (u *UI) tokenDelete(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["token"]
	if err := u.client(r).RevokeToken(r.Context(), name); err != nil {
		u.settingsFailed(w, r, s, "Revoke token "+name, err)
		return
	}
	u.settings(w, r, s, http.StatusOK, "Token "+name+" revoked.", "", settingsData{})
}
