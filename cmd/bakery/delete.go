package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

func newDeleteCmd(a *app) *cobra.Command {
	var files []string
	var ignoreNotFound, wait, purge bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "delete (-f FILE|DIR|- | TYPE NAME… | TYPE/NAME…)",
		Short: "Delete nodes and deployments",
		Long: `Delete the objects named on the command line or in manifests (-f).

Every object is tried; one that does not exist is an error (exit code 1)
unless --ignore-not-found is given.

Deleting a deployment removes its app from every node first (units stopped
and removed, nginx site removed, files pruned); the object disappears once
that is done. By default the command waits for it (--wait=false returns at
once; 'bakery get' then shows the deployment until the nodes are clean).

A deployment's persistent directories (spec.persistent) stay on the nodes
(a deployment of the same name finds them again) unless --purge-data is
given.`,
		Example: `  bakery delete deployment hello
  bakery delete node/web-1 node/web-2
  bakery delete -f examples/hello/
  bakery delete deploy old --ignore-not-found
  bakery delete deployment scratch --purge-data`,
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
				return deleteTargets(cmd, a, c, ts, ignoreNotFound, wait, purge, timeout)
			default:
				var err error
				if ts, err = parseTargets(args, true); err != nil {
					return err
				}
				c, err := a.client(cmd)
				if err != nil {
					return err
				}
				return deleteTargets(cmd, a, c, ts, ignoreNotFound, wait, purge, timeout)
			}
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "delete the objects in these manifests (file, directory or -); repeatable")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat an object that does not exist as deleted")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until deployments are removed from their nodes and gone")
	cmd.Flags().BoolVar(&purge, "purge-data", false, "also remove deployments' persistent directories (spec.persistent) from the nodes")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

func deleteTargets(cmd *cobra.Command, a *app, c *client.Client, ts []target, ignoreNotFound, wait, purge bool, timeout time.Duration) error {
	failed := 0
	for _, t := range ts {
		var err error
		if purge && t.kind == api.KindDeployment {
			err = c.DeletePurgingData(cmd.Context(), t.name)
		} else {
			err = c.Delete(cmd.Context(), t.kind, t.name)
		}
		if err == nil && wait {
			err = waitGone(cmd.Context(), c, t, timeout)
			if err != nil {
				printError(a.errOut, err)
				failed++
				continue
			}
		}
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

// waitGone polls until t no longer exists.
func waitGone(ctx context.Context, c *client.Client, t target, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		_, err := c.Get(ctx, t.kind, t.name)
		if client.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: still being deleted after %s (its app is removed from its nodes first; see bakery describe)", qualifiedName(t.kind, t.name), timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
