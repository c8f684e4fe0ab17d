package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newDiffCmd(a *app) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR|- [-f …]",
		Short: "Show what 'bakery apply' would change",
		Long: `Show what applying the manifests would change, as unified diffs of each
object's labels, annotations and spec (live against applied). The server
computes them with a dry run: nothing is changed.

Exit codes (as kubectl diff):
  0  no differences
  1  differences found
  2  an error (invalid manifests, server unreachable, …)`,
		Example: `  bakery diff -f examples/hello/
  bakery get deployment hello -o yaml | sed 's/ref: main/ref: v2/' | bakery diff -f -

  # In a script
  if ! bakery diff -f apps/ > /dev/null; then bakery apply -f apps/; fi`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := loadFiles(a, files)
			if err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			resp, err := c.Apply(cmd.Context(), b.objs, true)
			if err != nil {
				return b.localize(a.explain(c, err))
			}
			if !resp.Changed() {
				return nil
			}
			for _, r := range resp.Results {
				if r.Action == "unchanged" || r.Diff == "" {
					continue
				}
				d := r.Diff
				if !strings.HasSuffix(d, "\n") {
					d += "\n"
				}
				fmt.Fprint(a.out, d)
			}
			return &exitCodeError{code: exitDiff}
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory (recursive) or - for stdin; repeatable")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}
