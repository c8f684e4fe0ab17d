package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"bakery.dev/bakery/api"
)

type versionInfo struct {
	Client      clientVersion    `json:"clientVersion"`
	Server      *api.VersionInfo `json:"serverVersion,omitempty"`
	ServerError string           `json:"serverError,omitempty"`
}

type clientVersion struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func newVersionCmd(a *app) *cobra.Command {
	var output string
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version and, if reachable, the server's",
		Long: `Print the version of this binary and, when a server is configured and
answers, the server's version and store kind. An unreachable server is
reported but is not an error.`,
		Example: `  bakery version
  bakery version --client
  bakery version -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "yaml" {
				return usageErrorf("--output must be json or yaml, not %q", output)
			}
			v := versionInfo{Client: clientVersion{
				Version: version, Commit: commit,
				GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
			}}
			if !clientOnly {
				if c, err := a.client(cmd); err != nil {
					v.ServerError = err.Error()
				} else if sv, err := c.Version(cmd.Context()); err != nil {
					v.ServerError = a.explain(c, err).Error()
				} else {
					v.Server = sv
				}
			}
			switch output {
			case "json":
				b, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(a.out, "%s\n", b)
			case "yaml":
				b, err := yaml.Marshal(v)
				if err != nil {
					return err
				}
				a.out.Write(b)
			default:
				fmt.Fprintf(a.out, "Client Version: %s (commit %s, %s, %s)\n", version, commit, v.Client.GoVersion, v.Client.Platform)
				if v.Server != nil {
					fmt.Fprintf(a.out, "Server Version: %s (commit %s, %s store)\n", v.Server.Version, v.Server.Commit, v.Server.Store)
				} else if v.ServerError != "" {
					fmt.Fprintf(a.errOut, "Server Version: unknown: %s\n", v.ServerError)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml")
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client's version only")
	return cmd
}
