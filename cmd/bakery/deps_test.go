package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The dependency policy of Bakery, in the manner of Go's own
// go/build/deps_test.go: which project packages each project package may
// import. docs/architecture.md draws the same picture.
//
// TestDeps walks `go list` and fails on any import edge between Bakery's
// packages that the table does not allow, and on any package the table does
// not know, printing one offending edge per line with the rule it breaks.
// Changing the table is a design decision, never the way to make a build
// pass: say in the commit why the new edge is right.
//
// Tests (the non-e2e _test.go files; e2e files sit behind a build tag that
// `go list` does not see) may import across the layers to wire real parts
// together, e.g. an API test against the real control loop; only the rules
// marked tests hold for them too.

// module is Bakery's module path; the table names packages without it.
const module = "bakery.dev/bakery/"

// everything, as the only entry of a row, allows every project package
// except test support (cmd/bakery wires everything).
const everything = "*"

// deps lists, for every project package, the project packages its non-test
// Go files may import directly. Rows may name packages that do not exist
// (yet); a package missing from the table fails the test.
var deps = map[string][]string{
	// The bottom: nothing of Bakery's.
	"api":                       {}, // resource and wire types
	"sshexec":                   {},
	"migrations":                {},
	"scripts":                   {}, // the node installer, served by the API
	"api/store/sealed":          {},
	"reconciler/nodefiles":      {"api"}, // api: the validation rules of node parameters
	"reconciler/internal/queue": {},

	// Types and storage.
	"manifests":           {"api"},
	"api/store":           {"api", "manifests"},
	"api/store/filestore": {"api", "api/store", "manifests"},
	"api/store/pgstore":   {"api", "api/store", "migrations"},

	// The HTTP layer: nothing of the control loop.
	"api/auth":   {"api", "api/store"},
	"api/github": {"api"},
	"api/client": {"api"},
	"api/server": {"api", "api/auth", "api/github", "api/store", "api/store/sealed", "manifests", "scripts"},
	"api/ui":     {"api", "api/auth", "api/client", "api/store", "manifests"}, // api/store: its types and checks only (Session, ErrNotFound, CheckRolloutID); the UI is handed no Store

	// The control loop: nothing of the HTTP layer.
	"reconciler":                     {"api"}, // the reconcile contract
	"reconciler/internal/controller": {"api", "api/store", "reconciler", "reconciler/internal/queue"},
	"reconciler/nodescript":          {"api", "reconciler/nodefiles", "sshexec"},
	"reconciler/nodeconn":            {"api", "api/store", "api/store/sealed", "sshexec"},
	"reconciler/source":              {"api"}, // git on the control plane only: the node side is nodescript's
	"reconciler/notify":              {"api"},
	"reconciler/rolloutlog":          {"api", "api/store", "sshexec"}, // sshexec: a step's exit status
	"reconciler/internal/events":     {"api", "api/store", "reconciler/notify"},
	"reconciler/manifestsync":        {"api", "api/store", "manifests"},
	"reconciler/deployment": {"api", "api/store", "api/store/sealed", "manifests", "sshexec",
		"reconciler", "reconciler/internal/events", "reconciler/nodeconn", "reconciler/nodefiles", "reconciler/nodescript",
		"reconciler/notify", "reconciler/rolloutlog", "reconciler/source"},
	"reconciler/node": {"api", "api/store", "sshexec",
		"reconciler", "reconciler/internal/events", "reconciler/nodeconn", "reconciler/nodefiles", "reconciler/nodescript", "reconciler/notify"},
	"reconciler/manifestsource": {"api", "api/store", "api/store/sealed", "manifests",
		"reconciler", "reconciler/internal/events", "reconciler/manifestsync", "reconciler/source"},
	"reconciler/analytics": {"api", "api/store", "sshexec",
		"reconciler", "reconciler/nodeconn", "reconciler/nodefiles", "reconciler/nodescript"},
	"reconciler/manager": {"api", "api/store", "api/store/sealed", "manifests", "sshexec",
		"reconciler", "reconciler/internal/controller", "reconciler/internal/events", "reconciler/internal/queue",
		"reconciler/analytics", "reconciler/deployment", "reconciler/manifestsource", "reconciler/manifestsync",
		"reconciler/node", "reconciler/nodeconn", "reconciler/nodefiles", "reconciler/nodescript",
		"reconciler/notify", "reconciler/rolloutlog", "reconciler/source"},

	// The binary and the tools.
	"cmd/bakery":     {everything},
	"scripts/genref": {"api"},

	// Test support: imported by tests only (no other row names them).
	"api/store/storetest":                   {"api", "api/store"},
	"api/store/pgstore/pgtest":              {},
	"api/github/githubtest":                 {"api", "api/github"},
	"api/ui/browsertest":                    {},
	"reconciler/internal/simnode":           {"reconciler/nodescript", "sshexec"},
	"reconciler/internal/testenv":           {"api/store", "api/store/filestore"},
	"reconciler/internal/events/eventstest": {"api", "api/store", "api/store/filestore", "reconciler/internal/events", "reconciler/notify"},
	"scripts/testnodes":                     {},
}

// testSupport are the rows above that only tests may import.
var testSupport = []string{
	"api/store/storetest", "api/store/pgstore/pgtest", "api/github/githubtest",
	"api/ui/browsertest", "reconciler/internal/simnode", "reconciler/internal/testenv", "reconciler/internal/events/eventstest", "scripts/testnodes",
}

// A rule is one of the design's negative statements: pkg must not import
// any package matching not (except those matching except), directly or
// through other packages. Patterns are package names; "x/..." matches x and
// every package under it; "..." matches every project package. TestDeps
// checks the rules against the real imports and against the table itself,
// so that the table cannot quietly allow what a rule forbids.
type rule struct {
	pkg    string
	not    []string
	except []string
	tests  bool // the package's tests (non-e2e) must keep the rule too
	why    string
}

var rules = []rule{
	{pkg: "api", not: []string{"..."}, tests: true,
		why: "api (types) imports nothing of Bakery's"},
	{pkg: "sshexec", not: []string{"..."}, tests: true,
		why: "sshexec imports nothing of Bakery's"},
	{pkg: "manifests", not: []string{"..."}, except: []string{"api"}, tests: true,
		why: "manifests imports only api"},
	{pkg: "api/store/...", not: []string{"api/server/...", "api/ui/...", "api/client/...", "reconciler/..."}, tests: true,
		why: "the stores know neither the HTTP layer nor the control loop"},
	{pkg: "api/server/...", not: []string{"reconciler/..."},
		why: "api/server imports nothing under reconciler/ (it declares the interface it needs; cmd plugs the loop in)"},
	{pkg: "api/ui/...", not: []string{"reconciler/..."},
		why: "api/ui imports nothing under reconciler/"},
	{pkg: "reconciler/...", not: []string{"api/server/...", "api/ui/...", "api/client/..."}, tests: true,
		why: "nothing under reconciler/ imports api/server, api/ui or api/client"},
}

// A policy is a table, its test support packages and its rules.
type policy struct {
	deps        map[string][]string
	testSupport []string
	rules       []rule
}

// bakeryPolicy is the policy above.
var bakeryPolicy = policy{deps: deps, testSupport: testSupport, rules: rules}

func TestDeps(t *testing.T) {
	var bad []string
	bad = append(bad, bakeryPolicy.checkTable()...)
	pkgs, err := goList()
	if err != nil {
		t.Fatal(err)
	}
	bad = append(bad, bakeryPolicy.checkImports(pkgs)...)
	if len(bad) > 0 {
		t.Errorf("import edges that break the dependency policy (table: cmd/bakery/deps_test.go):\n\t%s",
			strings.Join(bad, "\n\t"))
	}
	for _, name := range bakeryPolicy.missingRows(pkgs) {
		t.Logf("table row for a package that does not exist (yet): %s", name)
	}
}

// listed is what `go list -json` says about one package.
type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// goList returns the module's packages with their project imports, names
// without the module prefix. Files behind build tags (e2e) are not seen.
func goList() (map[string]*listed, error) {
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", module+"...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.Join(err, errors.New(stderr.String()))
	}
	pkgs := map[string]*listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if p.Error != nil {
			return nil, errors.New(p.ImportPath + ": " + p.Error.Err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		p.Imports = project(p.Imports, p.ImportPath)
		p.TestImports = project(append(p.TestImports, p.XTestImports...), p.ImportPath)
		pkgs[p.ImportPath] = &p
	}
	return pkgs, nil
}

// project keeps the project packages of paths other than self, without the
// module prefix, sorted and unique.
func project(paths []string, self string) []string {
	var out []string
	for _, p := range paths {
		if name, ok := strings.CutPrefix(p, module); ok && name != self {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkImports reports, one line each, the packages the table does not
// know, the import edges it does not allow and the test imports that break
// a rule.
func (pol policy) checkImports(pkgs map[string]*listed) []string {
	var bad []string
	imports := map[string][]string{}
	for name, p := range pkgs {
		imports[name] = p.Imports
	}
	for _, name := range sortedKeys(pkgs) {
		p := pkgs[name]
		if _, ok := pol.deps[name]; !ok {
			bad = append(bad, name+": not in the table: add it, with the project packages it may import")
			continue
		}
		for _, imp := range p.Imports {
			if !pol.allowed(name, imp) {
				bad = append(bad, edge(name, imp, "not in the table", pol.brokenRules(name, imp, imports, false)))
			}
		}
		for _, imp := range p.TestImports {
			if why := pol.brokenRules(name, imp, imports, true); len(why) > 0 {
				bad = append(bad, edge(name+" (tests)", imp, "", why))
			}
		}
	}
	return bad
}

// checkTable reports rows that name packages without a row, rules that
// match no row, and rules that the table itself breaks (an allowed chain of
// imports reaching a forbidden package).
func (pol policy) checkTable() []string {
	var bad []string
	for _, name := range sortedKeys(pol.deps) {
		for _, imp := range pol.deps[name] {
			if _, ok := pol.deps[imp]; !ok && imp != everything {
				bad = append(bad, "table: "+name+" may import "+imp+", which has no row of its own")
			}
		}
	}
	for _, r := range pol.rules {
		if !slices.ContainsFunc(sortedKeys(pol.deps), func(name string) bool { return match(r.pkg, name) }) {
			bad = append(bad, "table: the rule for "+r.pkg+" matches no row")
		}
	}
	for _, name := range pol.testSupport {
		if _, ok := pol.deps[name]; !ok {
			bad = append(bad, "table: test support package "+name+" has no row")
		}
	}
	table := map[string][]string{}
	for _, name := range sortedKeys(pol.deps) {
		for _, imp := range sortedKeys(pol.deps) {
			if imp != name && pol.allowed(name, imp) {
				table[name] = append(table[name], imp)
			}
		}
	}
	for _, name := range sortedKeys(table) {
		for _, imp := range table[name] {
			if why := pol.brokenRules(name, imp, table, false); len(why) > 0 {
				bad = append(bad, edge("table: "+name, imp, "allowed", why))
			}
		}
	}
	return bad
}

// allowed says whether the table lets pkg import imp directly.
func (pol policy) allowed(pkg, imp string) bool {
	may := pol.deps[pkg]
	if len(may) == 1 && may[0] == everything {
		return !slices.Contains(pol.testSupport, imp)
	}
	return slices.Contains(may, imp)
}

// brokenRules returns the reasons why pkg (or its tests, when tests) may not
// import imp: the rules for pkg that forbid imp or a package imp leads to
// through imports.
func (pol policy) brokenRules(pkg, imp string, imports map[string][]string, tests bool) []string {
	var why []string
	for _, r := range pol.rules {
		if !match(r.pkg, pkg) || (tests && !r.tests) {
			continue
		}
		if path := forbiddenPath(r, imp, imports); path != nil {
			w := r.why
			if len(path) > 1 {
				w += " (via " + strings.Join(path, " → ") + ")"
			}
			why = append(why, w)
		}
	}
	return why
}

// forbiddenPath returns the shortest import path from imp to a package that
// rule r forbids, or nil.
func forbiddenPath(r rule, imp string, imports map[string][]string) []string {
	prev := map[string]string{imp: ""}
	queue := []string{imp}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if matchAny(r.not, p) && !matchAny(r.except, p) {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, next := range imports[p] {
			if _, seen := prev[next]; !seen {
				prev[next] = p
				queue = append(queue, next)
			}
		}
	}
	return nil
}

// edge is one line of the report: "from → to: what; breaks: why".
func edge(from, to, what string, why []string) string {
	var parts []string
	if what != "" {
		parts = append(parts, what)
	}
	if len(why) > 0 {
		parts = append(parts, "breaks: "+strings.Join(why, "; "))
	}
	return from + " → " + to + ": " + strings.Join(parts, "; ")
}

func match(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, pkg) })
}

// missingRows returns the table's rows for packages that do not exist.
func (pol policy) missingRows(pkgs map[string]*listed) []string {
	var out []string
	for _, name := range sortedKeys(pol.deps) {
		if _, ok := pkgs[name]; !ok {
			out = append(out, name)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestDepsPolicy checks the checker on a small made-up module.
func TestDepsPolicy(t *testing.T) {
	pol := policy{
		deps: map[string][]string{
			"api": {}, "api/server": {"api"}, "reconciler": {"api"}, "cmd/bakery": {everything},
			"api/store/storetest": {"api"},
		},
		testSupport: []string{"api/store/storetest"},
		rules: []rule{
			{pkg: "api", not: []string{"..."}, why: "api imports nothing"},
			{pkg: "api/server/...", not: []string{"reconciler/..."}, why: "server: no loop"},
			{pkg: "reconciler/...", not: []string{"api/server/..."}, tests: true, why: "loop: no server"},
		},
	}
	pkgs := map[string]*listed{
		"api":                 {ImportPath: "api"},
		"api/server":          {ImportPath: "api/server", Imports: []string{"api", "reconciler"}, TestImports: []string{"reconciler"}},
		"reconciler":          {ImportPath: "reconciler", Imports: []string{"api"}, TestImports: []string{"api/server"}},
		"cmd/bakery":          {ImportPath: "cmd/bakery", Imports: []string{"api", "api/store/storetest", "reconciler"}},
		"api/store/storetest": {ImportPath: "api/store/storetest", Imports: []string{"api"}},
		"newpkg":              {ImportPath: "newpkg"},
	}
	got := pol.checkImports(pkgs)
	want := []string{
		"api/server → reconciler: not in the table; breaks: server: no loop",
		"cmd/bakery → api/store/storetest: not in the table",
		"newpkg: not in the table: add it, with the project packages it may import",
		"reconciler (tests) → api/server: breaks: loop: no server",
	}
	if !slices.Equal(got, want) {
		t.Errorf("checkImports =\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	if got := pol.checkTable(); len(got) != 0 {
		t.Errorf("checkTable of a consistent table = %q", got)
	}
	pol.deps["api"] = []string{"reconciler", "api/ui"}
	pol.rules = append(pol.rules, rule{pkg: "api/client", why: "matches no row"})
	got = pol.checkTable()
	want = []string{
		"table: api may import api/ui, which has no row of its own",
		"table: the rule for api/client matches no row",
		"table: api → reconciler: allowed; breaks: api imports nothing",
		"table: api/server → api: allowed; breaks: server: no loop (via api → reconciler)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("checkTable =\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
