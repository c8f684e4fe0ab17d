package ui

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

// The secrets pages list Secrets with their keys and set or delete keys.
// A value goes one way only: from the form to the API, which seals it. No
// page ever renders a value: reads come through the API, which shows keys
// only (server.Redact); the form's value field is always empty, also when
// it comes back with an error; and an error message is scrubbed of the
// value before it is shown, should the API ever echo one.

// secretRow is a Secret as the pages show it.
type secretRow struct {
	Name   string
	Keys   []string
	Age    string
	UsedBy []string
}

// secretForm is what the set form keeps between tries: never the value.
type secretForm struct{ Name, Key string }

// secretsData is the list page's (S nil) and a secret's page's data.
type secretsData struct {
	Secrets  []secretRow
	S        *secretRow
	Form     secretForm
	Problems []problem
}

// usedBy maps each secret name to the deployments referencing it.
func (u *UI) usedBy(r *http.Request) (map[string][]string, error) {
	objs, err := u.client(r).List(r.Context(), api.KindDeployment, "")
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, o := range objs {
		d := o.(*api.Deployment)
		for _, n := range d.Spec.SecretNames() {
			out[n] = append(out[n], d.Metadata.Name)
		}
	}
	return out, nil
}

func (u *UI) secretRowOf(sec *api.Secret, used map[string][]string) secretRow {
	// Keys come from status.keys, which the API fills in on reads;
	// spec.data and spec.sealed never reach the UI's reads.
	row := secretRow{Name: sec.Metadata.Name, Keys: sec.Status.Keys, Age: "–", UsedBy: used[sec.Metadata.Name]}
	if t := sec.Metadata.CreationTimestamp; t != nil && !t.IsZero() {
		row.Age = age(u.cfg.Now().Sub(t.Time))
	}
	return row
}

// age writes how old something is.
func age(d time.Duration) string {
	return strings.TrimSuffix(ago(d), " ago")
}

// listSecrets renders the secrets list with code and the form as given.
func (u *UI) listSecrets(w http.ResponseWriter, r *http.Request, s *session, code int, msg, errMsg string, d secretsData) {
	objs, err := u.client(r).List(r.Context(), api.KindSecret, "")
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "List secrets: "+err.Error())
		return
	}
	used, err := u.usedBy(r)
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "List deployments: "+err.Error())
		return
	}
	d.Secrets = nil
	for _, o := range objs {
		d.Secrets = append(d.Secrets, u.secretRowOf(o.(*api.Secret), used))
	}
	p := u.pageFor(s, "Secrets", "secrets", d)
	p.Message, p.Error = msg, errMsg
	u.render(w, r, code, "secrets", "", p)
}

func (u *UI) secretsPage(w http.ResponseWriter, r *http.Request, s *session) {
	msg := ""
	if n := r.URL.Query().Get("deleted"); api.ValidateName(n) == "" {
		msg = "Secret " + n + " deleted."
	}
	u.listSecrets(w, r, s, http.StatusOK, msg, "", secretsData{})
}

// envName matches the keys the pages echo from their query (a Secret's
// keys are environment variable names).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// showSecret renders secret name's page with code.
func (u *UI) showSecret(w http.ResponseWriter, r *http.Request, s *session, code int, name, msg, errMsg string, form secretForm, ps []problem) {
	o, err := u.client(r).Get(r.Context(), api.KindSecret, name)
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "Secret "+name+": "+err.Error())
		return
	}
	used, err := u.usedBy(r)
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "List deployments: "+err.Error())
		return
	}
	form.Name = name
	row := u.secretRowOf(o.(*api.Secret), used)
	d := secretsData{S: &row, Form: form, Problems: ps}
	p := u.pageFor(s, "Secret "+name, "secrets", d)
	p.Message, p.Error = msg, errMsg
	u.render(w, r, code, "secrets", "", p)
}

func (u *UI) secretPage(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	msg := ""
	q := r.URL.Query()
	switch {
	case envName.MatchString(q.Get("set")):
		msg = "Key " + q.Get("set") + " set: the value is sealed and stored. Deployments using this secret roll out with it."
	case envName.MatchString(q.Get("unset")):
		msg = "Key " + q.Get("unset") + " deleted."
	}
	u.showSecret(w, r, s, http.StatusOK, name, msg, "", secretForm{}, nil)
}

// scrub removes value from a message shown to the user. The API does not
// echo values; this keeps it so should one ever do. Values shorter than
// four bytes are left alone: replacing them would garble the message and
// they are no secret worth the name.
func scrub(msg, value string) string {
	if len(value) < 4 {
		return msg
	}
	return strings.ReplaceAll(msg, value, "***")
}

// secretSet creates a secret or sets one key of it (its other keys are
// kept), as `bakery secret set` does: the UI reads the stored sealed
// values, which it neither opens nor shows, and sends the new value in
// spec.data for the server to seal.
func (u *UI) secretSet(w http.ResponseWriter, r *http.Request, s *session) {
	fromPage := mux.Vars(r)["name"] // set from the secret's own page
	f := secretForm{Name: strings.TrimSpace(r.PostFormValue("name")), Key: strings.TrimSpace(r.PostFormValue("key"))}
	if fromPage != "" {
		f.Name = fromPage
	}
	// Browsers send a textarea's line breaks as CRLF.
	value := strings.ReplaceAll(r.PostFormValue("value"), "\r\n", "\n")
	fail := func(code int, msg string, ps []problem) {
		msg = scrub(msg, value) + " Nothing was saved; enter the value again."
		for i := range ps {
			ps[i].Reason = scrub(ps[i].Reason, value)
		}
		if fromPage != "" {
			u.showSecret(w, r, s, code, fromPage, "", msg, f, ps)
			return
		}
		u.listSecrets(w, r, s, code, "", msg, secretsData{Form: f, Problems: ps})
	}
	var ps []problem
	if reason := api.ValidateName(f.Name); reason != "" {
		ps = append(ps, problem{"metadata.name", reason})
	}
	if f.Key == "" {
		ps = append(ps, problem{"spec.data", "a key is required"})
	}
	if len(ps) > 0 {
		fail(http.StatusBadRequest, "The secret has errors.", ps)
		return
	}
	c := u.client(r)
	ctx := r.Context()
	sec := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindSecret}, Metadata: api.ObjectMeta{Name: f.Name}}
	cur, err := c.GetSealed(ctx, api.KindSecret, f.Name)
	exists := err == nil
	switch {
	case exists:
		sec = cur.(*api.Secret)
		sec.Status = api.SecretStatus{}
		delete(sec.Spec.Sealed, f.Key)
	case !client.IsNotFound(err):
		msg, ps := problems(err)
		fail(apiStatus(err), msg, ps)
		return
	}
	sec.Spec.Data = map[string]string{f.Key: value}
	if exists {
		_, err = c.Replace(ctx, sec) // with the resourceVersion read
	} else {
		_, err = c.Create(ctx, sec)
	}
	if err != nil {
		msg, ps := problems(err)
		if errors.Is(err, client.ErrConflict) {
			msg = "Secret " + f.Name + " changed while this value was being set (or was created meanwhile)."
		}
		fail(apiStatus(err), msg, ps)
		return
	}
	u.log.Info("ui: secret key set", "secret", f.Name, "key", f.Key, "user", s.User)
	http.Redirect(w, r, Prefix+"/secrets/"+url.PathEscape(f.Name)+"?set="+url.QueryEscape(f.Key), http.StatusSeeOther)
}

// secretUnset deletes one key of a secret.
func (u *UI) secretUnset(w http.ResponseWriter, r *http.Request, s *session) {
	name, key := mux.Vars(r)["name"], mux.Vars(r)["key"]
	c := u.client(r)
	cur, err := c.GetSealed(r.Context(), api.KindSecret, name)
	if err != nil {
		u.errorPage(w, r, s, apiStatus(err), "Secret "+name+": "+err.Error())
		return
	}
	sec := cur.(*api.Secret)
	sec.Status = api.SecretStatus{}
	if _, ok := sec.Spec.Sealed[key]; !ok {
		u.showSecret(w, r, s, http.StatusNotFound, name, "", "Secret "+name+" has no key "+key+".", secretForm{}, nil)
		return
	}
	delete(sec.Spec.Sealed, key)
	if _, err := c.Replace(r.Context(), sec); err != nil {
		msg, ps := problems(err)
		if errors.Is(err, client.ErrConflict) {
			msg = "Secret " + name + " changed meanwhile: nothing was deleted, look again and retry."
		}
		u.showSecret(w, r, s, apiStatus(err), name, "", msg, secretForm{}, ps)
		return
	}
	u.log.Info("ui: secret key deleted", "secret", name, "key", key, "user", s.User)
	http.Redirect(w, r, Prefix+"/secrets/"+url.PathEscape(name)+"?unset="+url.QueryEscape(key), http.StatusSeeOther)
}

func (u *UI) secretDelete(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	if err := u.client(r).Delete(r.Context(), api.KindSecret, name); err != nil {
		u.errorPage(w, r, s, apiStatus(err), "Delete secret "+name+": "+err.Error())
		return
	}
	u.log.Info("ui: secret deleted", "secret", name, "user", s.User)
	http.Redirect(w, r, Prefix+"/secrets?deleted="+url.QueryEscape(name), http.StatusSeeOther)
}

// secretRef is a secret a deployment references, as its page shows it.
type secretRef struct {
	Name    string
	Uses    []string // "all keys" or "KEY as ENV"
	Missing bool
	Keys    []string
}

// secretRefs lists the secrets d references and whether they exist.
func (u *UI) secretRefs(r *http.Request, d *api.Deployment) ([]secretRef, error) {
	names := d.Spec.SecretNames()
	if len(names) == 0 {
		return nil, nil
	}
	objs, err := u.client(r).List(r.Context(), api.KindSecret, "")
	if err != nil {
		return nil, err
	}
	keys := map[string][]string{}
	for _, o := range objs {
		sec := o.(*api.Secret)
		keys[sec.Metadata.Name] = sec.Status.Keys
		if keys[sec.Metadata.Name] == nil {
			keys[sec.Metadata.Name] = []string{}
		}
	}
	var out []secretRef
	for _, n := range names {
		ref := secretRef{Name: n, Keys: keys[n], Missing: keys[n] == nil}
		for _, e := range d.Spec.Run.EnvFrom {
			if e.SecretRef == n {
				ref.Uses = append(ref.Uses, "all keys")
			}
		}
		for _, e := range d.Spec.Run.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == n {
				use := e.ValueFrom.SecretKeyRef.Key + " as " + e.Name
				if !ref.Missing && !slices.Contains(ref.Keys, e.ValueFrom.SecretKeyRef.Key) {
					use += " (missing)"
				}
				ref.Uses = append(ref.Uses, use)
			}
		}
		out = append(out, ref)
	}
	return out, nil
}
