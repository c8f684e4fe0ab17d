package main

import (
	"fmt"

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
		Short: "Write every node, deployment (and secret) as manifests 'bakery apply' restores",
		Long: `Write every Node and Deployment (and, with --secrets, every Secret) as YAML
manifests: what users wrote (name, labels, annotations, spec), without
status or store-owned metadata. 'bakery apply -f FILE' restores them into
an empty store.

Secrets are left out unless --secrets is given; then they are written
sealed (spec.sealed, never in plain text) and open only on a server that
holds the encryption key they were sealed with: keep that key with the
backup, but not in the same place. Rollout history, events and API tokens
are not exported (see docs/operations.md for full backups).`,
		Example: `  bakery export --secrets -f backup.yaml
  # into a new, empty server with the same BAKERY_ENCRYPTION_KEY:
  bakery apply -f backup.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			kinds := []string{api.KindNode, api.KindDeployment}
			if secrets {
				kinds = []string{api.KindNode, api.KindSecret, api.KindDeployment}
			}
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
