package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api/client"
)

func newDeleteCmd(a *app) *cobra.Command {
	var files []string
	var ignoreNotFound bool
	cmd := &cobra.Command{
		Use:   "delete (-f FILE|DIR|- | TYPE NAME… | TYPE/NAME…)",
		Short: "Delete nodes and deployments",
		Long: `Delete the objects named on the command line or in manifests (-f).

Every object is tried; one that does not exist is an error (exit code 1)
unless --ignore-not-found is given.`,
		Example: `  bakery delete deployment hello
  bakery delete node/web-1 node/web-2
  bakery delete -f examples/hello/
  bakery delete deploy old --ignore-not-found`,
		ValidArgsFunction: completeTargets(a),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ts []target
			switch {
			case len(files) > 0 && len(args) > 0:
				return usageErrorf("give -f or names, not both")
			case len(files) > 0:
				c, err := a.client(cmd)
				if err != nil {
					return err
				}
				b, err := loadFiles(a, files)
				if err != nil {
					return err
				}
				for _, o := range b.objs {
					ts = append(ts, target{o.GetTypeMeta().Kind, o.GetObjectMeta().Name})
				}
				return deleteTargets(cmd, a, c, ts, ignoreNotFound)
			default:
				var err error
				if ts, err = parseTargets(args, true); err != nil {
					return err
				}
				c, err := a.client(cmd)
				if err != nil {
					return err
				}
				return deleteTargets(cmd, a, c, ts, ignoreNotFound)
			}
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "delete the objects in these manifests (file, directory or -); repeatable")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat an object that does not exist as deleted")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

func deleteTargets(cmd *cobra.Command, a *app, c *client.Client, ts []target, ignoreNotFound bool) error {
	failed := 0
	for _, t := range ts {
		err := c.Delete(cmd.Context(), t.kind, t.name)
		switch {
		case err == nil:
			fmt.Fprintf(a.out, "%s deleted\n", qualifiedName(t.kind, t.name))
		case client.IsNotFound(err) && ignoreNotFound:
		case client.IsNotFound(err):
			printError(a.errOut, notFoundError(t.kind, t.name))
			failed++
		case client.IsUnauthorized(err):
			return a.explain(c, err)
		default:
			printError(a.errOut, fmt.Errorf("delete %s/%s: %w", t.kind, t.name, a.explain(c, err)))
			failed++
		}
	}
	if failed > 0 {
		return &exitCodeError{code: exitError}
	}
	return nil
}
