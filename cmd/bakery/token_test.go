package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/sealed"
)

// TestToken: create → list shows it without its value → it works →
// revoke → it is refused; on both stores, through a real `bakery server`.
func TestToken(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			isolate(t)
			data := filepath.Join(t.TempDir(), "data")
			args, _ := sk.setup(t, data)
			t.Setenv("BAKERY_ENCRYPTION_KEY", sealed.NewKey())
			url, _, _ := startServerCmd(t, args...)
			t.Setenv("BAKERY_SERVER", url)
			t.Setenv("BAKERY_TOKEN", readToken(t, data))

			r := bakery(t, "", "token", "create", "ci")
			if r.code != 0 || !regexp.MustCompile(`^bkr_[A-Za-z0-9_-]{43}\n$`).MatchString(r.stdout) || !strings.Contains(r.stderr, "not shown again") {
				t.Fatalf("token create: %+v", r)
			}
			ci := strings.TrimSpace(r.stdout)

			out := must(t, "", "token", "list")
			if ls := lines(out); len(ls) != 3 || !strings.HasPrefix(ls[0], "NAME") || !strings.HasPrefix(ls[1], "admin ") || !strings.HasPrefix(ls[2], "ci ") {
				t.Errorf("token list:\n%s", out)
			}
			var list api.TokenList
			if err := json.Unmarshal([]byte(must(t, "", "token", "list", "-o", "json")), &list); err != nil || len(list.Items) != 2 || list.Items[1].Name != "ci" {
				t.Errorf("token list -o json: %+v %v", list, err)
			}
			y := must(t, "", "token", "list", "-o", "yaml")
			if !strings.Contains(y, "name: ci") || !strings.Contains(y, "createdAt:") {
				t.Errorf("token list -o yaml:\n%s", y)
			}
			if seen := out + y + dumpDir(t, data); strings.Contains(seen, ci) {
				t.Errorf("the token's value is shown or stored in clear")
			}

			// The new token works, and the server records it as the caller.
			must(t, "", "get", "nodes", "--token", ci)
			r = bakery(t, "", "token", "create", "ci")
			if r.code != 1 || !strings.Contains(r.stderr, "already exists") {
				t.Errorf("duplicate name: %+v", r)
			}

			wantLines(t, must(t, "", "token", "revoke", "ci"), "token/ci revoked")
			r = bakery(t, "", "get", "nodes", "--token", ci)
			if r.code != 1 || !strings.Contains(r.stderr, "rejected the token") {
				t.Errorf("revoked token: %+v", r)
			}
			if r := bakery(t, "", "token", "revoke", "ci"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
				t.Errorf("revoke twice: %+v", r)
			}
			if r := bakery(t, "", "token", "list", "--token", ci); r.code != 1 || !strings.Contains(r.stderr, "rejected the token") {
				t.Errorf("token list with the revoked token: %+v", r)
			}
		})
	}
}

func TestTokenUsage(t *testing.T) {
	isolate(t)
	for _, args := range [][]string{
		{"token", "create"},
		{"token", "create", "Bad_Name"},
		{"token", "create", "ci", "-o", "table"},
		{"token", "list", "-o", "wide"},
		{"token", "revoke"},
	} {
		if r := bakery(t, "", args...); r.code != 1 || !strings.Contains(r.stderr, "--help") {
			t.Errorf("bakery %v: %+v, want a usage error", args, r)
		}
	}
	for _, cmd := range []string{"create", "list", "revoke"} {
		out := must(t, "", "token", cmd, "--help")
		if !strings.Contains(out, "Examples:") || !strings.Contains(out, "--token") {
			t.Errorf("bakery token %s --help:\n%s", cmd, out)
		}
	}
	if out := must(t, "", "token", "--help"); !strings.Contains(out, "shown once") || !strings.Contains(out, "revoke") {
		t.Errorf("bakery token --help:\n%s", out)
	}
}
