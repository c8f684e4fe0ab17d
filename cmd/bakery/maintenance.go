package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
)

func newMaintenanceCmd(a *app) *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use:   "maintenance on|off deployment/NAME",
		Short: "Turn a deployment's maintenance mode on or off",
		Long: `Set spec.ingress.maintenance of the deployment (a new spec generation
that keeps a rollback's or redeploy's pin): while it is on, nginx answers
every request for the app's hosts with 503, a Retry-After header and the
message (default "Down for maintenance."), and the running slots are left
alone; off restores service at once (an nginx reload on each node, no
restart). ACME challenges and redirects keep being served. A rollback keeps
the maintenance mode as it is.

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
			m := &api.Maintenance{Enabled: on}
			if on {
				m.Message = message
			}
			if _, err := c.RequestActionWith(cmd.Context(), name, api.ActionMaintenance, api.ActionOptions{Maintenance: m}); err != nil {
				return a.explain(c, err)
			}
			state := "off"
			if on {
				state = "on"
			}
			fmt.Fprintf(a.out, "deployment.bakery.dev/%s maintenance %s\n", name, state)
			return nil
		},
	}
	cmd.Flags().StringVar(&message, "message", "", "the body of the 503 answers (printable ASCII without \" \\ ; { } $)")
	return cmd
}
