package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

func newMaintenanceCmd(a *app) *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use:   "maintenance on|off deployment/NAME",
		Short: "Turn a deployment's maintenance mode on or off",
		Long: `Set spec.ingress.maintenance of the deployment (as an edit of its spec,
like apply): while it is on, nginx answers every request for the app's hosts
with 503, a Retry-After header and the message (default "Down for
maintenance."), and the running slots are left alone; off restores service at
once (an nginx reload on each node, no restart). ACME challenges and redirects
keep being served.

A deployment applied from a ManifestSource gets its spec back at the next
sync: set spec.ingress.maintenance in the repository instead.`,
		Example: `  bakery maintenance on deployment/hello --message "Back at 10:00 UTC"
  bakery maintenance off deployment/hello`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			on := args[0] == "on"
			if !on && args[0] != "off" {
				return usageErrorf("want on or off, not %q", args[0])
			}
			if !on && cmd.Flags().Changed("message") {
				return usageErrorf("--message goes with on")
			}
			if r := api.ValidateText(message); message != "" && r != "" {
				return usageErrorf("--message %s", r)
			}
			name, err := deploymentArg(args[1])
			if err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cur, err := c.Get(ctx, api.KindDeployment, name)
			if err != nil {
				return a.explain(c, err)
			}
			d := cur.(*api.Deployment)
			d.Status = api.DeploymentStatus{}
			if d.Spec.Ingress == nil {
				d.Spec.Ingress = &api.Ingress{}
			}
			was := d.Spec.Ingress.Maintenance != nil && d.Spec.Ingress.Maintenance.Enabled
			if on {
				d.Spec.Ingress.Maintenance = &api.Maintenance{Enabled: true, Message: message}
			} else {
				d.Spec.Ingress.Maintenance = nil
			}
			if _, err := c.Replace(ctx, d); errors.Is(err, client.ErrConflict) {
				return fmt.Errorf("deployment %s changed while its maintenance mode was being set: run the command again", name)
			} else if err != nil {
				return a.explain(c, err)
			}
			what := map[[2]bool]string{{false, true}: "maintenance on", {true, true}: "maintenance on (message set)",
				{true, false}: "maintenance off", {false, false}: "maintenance was off"}[[2]bool{was, on}]
			fmt.Fprintf(a.out, "deployment.bakery.dev/%s %s\n", name, what)
			return nil
		},
	}
	cmd.Flags().StringVar(&message, "message", "", "the body of the 503 answers (printable ASCII without \" \\ ; { } $)")
	return cmd
}
