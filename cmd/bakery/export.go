package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/manifests"
)

func newExportCmd(a *app) *cobra.Command {
	var secrets bool
	var file string
	cmd := &cobra.Command{
		Use:   "export [--secrets] [-f FILE]",
		Short: "Write every object (and, with --secrets, every secret) as manifests 'bakery apply' restores",
		Long: `Write every object of every kind — Nodes, ManifestSources and Deployments,
and, with --secrets, Secrets — as YAML manifests: what users wrote (name,
labels, annotations, spec), without status or store-owned metadata.
'bakery apply -f FILE' restores them into an empty store.

Secrets and webhook secrets are left out unless --secrets is given; then
they are written sealed (never in plain text) and open only on a server
that holds the encryption key they were sealed with: keep that key with
the backup, but not in the same place. Webhook secrets are not objects:
they are written at the end as comment lines ("# bakery-webhook-secret:
…"), which 'bakery apply' skips and 'bakery webhook import -f FILE'
restores. Rollout history, events, API tokens, users and GitHub sign-ins
are not exported (see docs/operations.md for full backups).`,
		Example: `  bakery export --secrets -f backup.yaml
  # into a new, empty server with the same BAKERY_ENCRYPTION_KEY:
  bakery apply -f backup.yaml
  bakery webhook import -f backup.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			kinds := exportKinds(secrets)
			var objs []api.Object
			for _, k := range kinds {
				l, err := c.ListSealed(cmd.Context(), k)
				if err != nil {
					return a.explain(c, err)
				}
				for _, o := range l {
					objs = append(objs, exportable(o))
				}
			}
			b, err := manifests.Encode(objs...)
			if err != nil {
				return err
			}
			if secrets {
				ws, err := c.ListWebhookSecrets(cmd.Context(), true)
				if err != nil {
					return a.explain(c, err)
				}
				if b, err = appendWebhookSecrets(b, ws); err != nil {
					return err
				}
			}
			if file == "" || file == "-" {
				_, err = a.out.Write(b)
				return err
			}
			// 0600: the file may hold sealed secrets and node addresses.
			if err := renameio.WriteFile(file, b, 0o600); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			fmt.Fprintf(a.errOut, "exported %s to %s\n", plural(len(objs), "object"), file)
			return nil
		},
	}
	cmd.Flags().BoolVar(&secrets, "secrets", false, "include Secrets, sealed with the server's key")
	cmd.Flags().StringVarP(&file, "file", "f", "", "write to FILE (mode 0600) instead of standard output")
	return cmd
}

// exportKinds are the kinds export writes, in an order apply restores
// (nodes before what runs on them; secrets before what uses them): every
// kind, Secrets only with secrets.
func exportKinds(secrets bool) []string {
	var out []string
	for _, k := range []string{api.KindNode, api.KindSecret, api.KindManifestSource, api.KindDeployment} {
		if k != api.KindSecret || secrets {
			out = append(out, k)
		}
	}
	return out
}

// webhookSecretLine starts the comment line that carries one sealed
// webhook secret in an export.
const webhookSecretLine = "# bakery-webhook-secret: "

// appendWebhookSecrets adds the sealed webhook secrets to an export, as
// comment lines 'bakery apply' skips and 'bakery webhook import' reads.
func appendWebhookSecrets(b []byte, ws []api.WebhookSecretResponse) ([]byte, error) {
	if len(ws) == 0 {
		return b, nil
	}
	b = append(b, "---\n# Webhook secrets, sealed with the server's key. 'bakery apply' skips them;\n# restore them with: bakery webhook import -f FILE\n"...)
	for _, w := range ws {
		line, err := json.Marshal(exportedWebhookSecret{Repo: w.Repo, CreatedAt: w.CreatedAt, Sealed: w.Sealed})
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, webhookSecretLine...), line...), '\n')
	}
	return b, nil
}

// exportedWebhookSecret is one webhook secret in an export.
type exportedWebhookSecret struct {
	Repo      string    `json:"repo"`
	CreatedAt time.Time `json:"createdAt"`
	Sealed    string    `json:"sealed"`
}

// readWebhookSecrets reads the webhook secrets of an export.
func readWebhookSecrets(data []byte) ([]exportedWebhookSecret, error) {
	var out []exportedWebhookSecret
	for i, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), webhookSecretLine)
		if !ok {
			continue
		}
		var w exportedWebhookSecret
		if err := json.Unmarshal([]byte(rest), &w); err != nil || w.Repo == "" || w.Sealed == "" {
			return nil, fmt.Errorf("line %d: not a webhook secret of 'bakery export --secrets'", i+1)
		}
		out = append(out, w)
	}
	return out, nil
}

// exportable is o as a user would write it: name, labels, annotations
// (without a pending deletion) and spec.
func exportable(o api.Object) api.Object {
	c := o.DeepCopyObject()
	m := c.GetObjectMeta()
	*m = api.ObjectMeta{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations}
	delete(m.Annotations, api.AnnotationDeletionRequested)
	if len(m.Annotations) == 0 {
		m.Annotations = nil
	}
	_ = c.SetStatusJSON([]byte("{}"))
	if s, ok := c.(*api.Secret); ok {
		s.Status = api.SecretStatus{}
	}
	return c
}
