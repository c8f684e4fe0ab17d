package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

func newGetCmd(a *app) *cobra.Command {
	var output, selector string
	cmd := &cobra.Command{
		Use:   "get TYPE[,TYPE…] [NAME…] | TYPE/NAME…",
		Short: "Show nodes and deployments",
		Long: `Show one or many objects.

Types: nodes (node, no), deployments (deployment, deploy) and secrets (secret;
keys only, never values).

Output formats (-o):
  table  (default) nodes: NAME ADDRESS REACHABLE AGE
                   deployments: NAME READY COMMIT REVISION PINNED NODES AGE
                   (PINNED: rollback:N while a rollback holds the deployment
                   at revision N, redeploy:COMMIT after deploy --commit;
                   'bakery rollout resume' follows the ref again)
  wide   the table plus, for nodes, USER PORT OS LAST-HANDSHAKE DISK, and
         for deployments, RUNTIME REF HOSTS PROCESSES (running/wanted per process)
  yaml   multi-document YAML that 'bakery apply -f -' takes back
  json   one object, or a List of them ('bakery apply -f -' takes it back)
  name   TYPE/NAME per line (deployment.bakery.dev/hello)

Objects that do not exist are reported on stderr; the others are still
printed, and the exit code is 1.`,
		Example: `  bakery get nodes
  bakery get deployments -o wide
  bakery get deploy hello -o yaml
  bakery get node/web-1 deployment/hello
  bakery get nodes -l role=web,env!=staging -o name

  # Edit a deployment and apply it back
  bakery get deployment hello -o yaml > hello.yaml
  bakery apply -f hello.yaml`,
		ValidArgsFunction: completeTargets(a),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ts, err := parseTargets(args, false)
			if err != nil {
				return err
			}
			if selector != "" {
				if _, err := api.ParseSelector(selector); err != nil {
					return &usageError{err}
				}
				for _, t := range ts {
					if t.name != "" {
						return usageErrorf("a selector (-l) cannot be combined with names")
					}
				}
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			objs, failed, err := fetch(cmd, a, c, ts, selector)
			if err != nil {
				return err
			}
			single := len(ts) == 1 && ts[0].name != ""
			if len(objs) == 0 && failed == 0 && (output == "table" || output == "wide") {
				fmt.Fprintln(a.errOut, "No resources found.")
			}
			if err := printObjects(a.out, objs, output, single, time.Now()); err != nil {
				return err
			}
			if failed > 0 {
				return &exitCodeError{code: exitError}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, wide, yaml, json or name")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector (key=value,key!=value,key,!key)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// fetch reads the targets. A missing object is reported on stderr and
// counted in failed; any other error ends the command.
func fetch(cmd *cobra.Command, a *app, c *client.Client, ts []target, selector string) (objs []api.Object, failed int, err error) {
	ctx := cmd.Context()
	for _, t := range ts {
		if t.name == "" {
			list, err := c.List(ctx, t.kind, selector)
			if err != nil {
				return nil, 0, a.explain(c, err)
			}
			objs = append(objs, list...)
			continue
		}
		o, err := c.Get(ctx, t.kind, t.name)
		if client.IsNotFound(err) {
			printError(a.errOut, notFoundError(t.kind, t.name))
			failed++
			continue
		}
		if err != nil {
			return nil, 0, a.explain(c, err)
		}
		objs = append(objs, o)
	}
	return objs, failed, nil
}
