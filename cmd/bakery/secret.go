package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

func newSecretCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set, unset and list secrets, re-encrypt them after a key rotation",
		Long: `Secrets hold values applications need but that must not be written in plain
text: the server seals each value with its encryption key (AES-256-GCM,
BAKERY_ENCRYPTION_KEY) before storing it. Deployments reference them:

  run:
    envFrom:
      - secretRef: db            # every key of secret db
    env:
      - name: API_TOKEN
        valueFrom:
          secretKeyRef: {name: tokens, key: STRIPE}

The values reach nodes only inside the app's 0600 environment files; the
API, the CLI and rollout logs show keys only. Changing a secret rolls out
the deployments that use it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSecretSetCmd(a), newSecretUnsetCmd(a), newSecretGetCmd(a), newSecretReencryptCmd(a))
	return cmd
}

func newSecretSetCmd(a *app) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "set NAME [KEY=VALUE…] [--from-file KEY=PATH…]",
		Short: "Create a secret or set some of its keys (other keys are kept)",
		Long: `Create the secret NAME, or set the keys given and keep its other keys.

A value on the command line shows in your shell's history and, while the
command runs, in the process list of this machine: prefer --from-file for
real secrets (PATH - reads standard input).`,
		Example: `  bakery secret set db --from-file PASSWORD=./db-password
  printf %s "$TOKEN" | bakery secret set tokens --from-file STRIPE=-
  bakery secret set app LOG_LEVEL=debug`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if r := api.ValidateName(name); r != "" {
				return usageErrorf("secret name: %s", r)
			}
			data := map[string]string{}
			var order []string
			add := func(k, v, from string) error {
				if _, dup := data[k]; dup {
					return usageErrorf("key %s is given twice", k)
				}
				if k == "" {
					return usageErrorf("%s: the key is empty (want KEY=%s)", from, strings.ToUpper(from))
				}
				data[k] = v
				order = append(order, k)
				return nil
			}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return usageErrorf("%q: want KEY=VALUE", kv)
				}
				if err := add(k, v, "value"); err != nil {
					return err
				}
			}
			stdinUsed := false
			for _, kp := range files {
				k, p, ok := strings.Cut(kp, "=")
				if !ok || p == "" {
					return usageErrorf("--from-file %q: want KEY=PATH", kp)
				}
				var b []byte
				var err error
				if p == "-" {
					if stdinUsed {
						return usageErrorf("--from-file: standard input (-) can be read once")
					}
					stdinUsed = true
					b, err = io.ReadAll(io.LimitReader(a.in, api.MaxSecretValue+1))
				} else {
					b, err = os.ReadFile(p)
				}
				if err != nil {
					return fmt.Errorf("--from-file %s: %w", k, err)
				}
				if err := add(k, string(b), "path"); err != nil {
					return err
				}
			}
			if len(data) == 0 {
				return usageErrorf("give at least one KEY=VALUE or --from-file KEY=PATH")
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			sec := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindSecret}, Metadata: api.ObjectMeta{Name: name}}
			cur, err := c.GetSealed(ctx, api.KindSecret, name)
			exists := err == nil
			switch {
			case exists:
				sec = cur.(*api.Secret)
				sec.Status = api.SecretStatus{}
				for k := range data {
					delete(sec.Spec.Sealed, k)
				}
			case !client.IsNotFound(err):
				return a.explain(c, err)
			}
			sec.Spec.Data = data
			var out api.Object
			if exists {
				out, err = c.Replace(ctx, sec) // carries the resourceVersion read
			} else {
				out, err = c.Create(ctx, sec)
			}
			if errors.Is(err, client.ErrConflict) {
				return fmt.Errorf("secret %s changed while it was being set (or was created meanwhile): run the command again", name)
			}
			if err != nil {
				return a.explain(c, err)
			}
			sort.Strings(order)
			verb := "created"
			if exists {
				verb = "configured"
			}
			fmt.Fprintf(a.out, "secret/%s %s (set %s; keys: %s)\n", name, verb, strings.Join(order, ", "), strings.Join(out.(*api.Secret).Status.Keys, ", "))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&files, "from-file", nil, "KEY=PATH: the value of KEY is the content of the file PATH (- for standard input)")
	return cmd
}

func newSecretUnsetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "unset NAME KEY…",
		Short: "Remove keys from a secret",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cur, err := c.GetSealed(ctx, api.KindSecret, name)
			if err != nil {
				return a.explain(c, err)
			}
			sec := cur.(*api.Secret)
			sec.Status = api.SecretStatus{}
			for _, k := range args[1:] {
				if _, ok := sec.Spec.Sealed[k]; !ok {
					return fmt.Errorf("secret %s has no key %s (keys: %s)", name, k, strings.Join(sec.Spec.Keys(), ", "))
				}
				delete(sec.Spec.Sealed, k)
			}
			out, err := c.Replace(ctx, sec)
			if errors.Is(err, client.ErrConflict) {
				return fmt.Errorf("secret %s changed while it was being changed: run the command again", name)
			}
			if err != nil {
				return a.explain(c, err)
			}
			fmt.Fprintf(a.out, "secret/%s configured (keys: %s)\n", name, strings.Join(out.(*api.Secret).Status.Keys, ", "))
			return nil
		},
	}
}

func newSecretGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get [NAME…]",
		Short: "List secrets and their keys (never values)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			var objs []api.Object
			if len(args) == 0 {
				if objs, err = c.List(cmd.Context(), api.KindSecret, ""); err != nil {
					return a.explain(c, err)
				}
			}
			for _, n := range args {
				o, err := c.Get(cmd.Context(), api.KindSecret, n)
				if err != nil {
					return a.explain(c, err)
				}
				objs = append(objs, o)
			}
			if len(objs) == 0 {
				fmt.Fprintln(a.errOut, "No resources found.")
				return nil
			}
			tw := newTabWriter(a.out)
			secretTable(tw, objs, time.Now())
			return tw.Flush()
		},
	}
}

// secretTable prints NAME KEYS AGE: keys, never values.
func secretTable(w io.Writer, objs []api.Object, now time.Time) {
	fmt.Fprintln(w, "NAME\tKEYS\tAGE")
	for _, o := range objs {
		s := o.(*api.Secret)
		keys := strings.Join(s.Status.Keys, ",")
		if keys == "" {
			keys = "<none>"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", s.Metadata.Name, keys, age(s.Metadata.CreationTimestamp, now))
	}
}

func newSecretReencryptCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "reencrypt",
		Short: "Seal every sealed value again with the server's current key (key rotation)",
		Long: `Seal every value the server keeps sealed again with the current (first) key
of the server's keyring: Secret values, the postgres store's SSH key pair,
webhook secrets and GitHub tokens — every kind in the server's one registry
of sealed values. Rotation:

  1. Put the new key first and keep the old one after it, comma-separated:
     BAKERY_ENCRYPTION_KEY=NEW,OLD — on every server sharing the store —
     and restart them. New values are sealed with NEW; old ones still open.
  2. Run 'bakery secret reencrypt'.
  3. Drop OLD (BAKERY_ENCRYPTION_KEY=NEW) and restart the servers.

Secret values change only when every one of them opens; a value that does
not open stops it with an error naming the value (run it again after a
fix). Values already sealed with the current key are left as they are
(running it again is harmless). No deployment rolls out: the values
themselves do not change.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			r, err := c.Reencrypt(cmd.Context())
			if err != nil {
				return a.explain(c, err)
			}
			fmt.Fprintf(a.out, "every secret value is sealed with key %s: %s read, %s sealed again", r.KeyID, plural(r.Values, "value")+" of "+plural(r.Secrets, "secret"), plural(r.Resealed, "value"))
			if r.Identity {
				fmt.Fprint(a.out, ", and the SSH identity")
			}
			fmt.Fprintln(a.out)
			for _, k := range r.Kinds {
				if k.What != "Secret value" && k.What != "SSH identity" {
					fmt.Fprintf(a.out, "%s: %d read, %d sealed again\n", k.What+"s", k.Values, k.Resealed)
				}
			}
			return nil
		},
	}
}
