package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
	"bakery.dev/bakery/manifests"
)

// bundle is the objects loaded from every -f, with the argument each came
// from (for error messages).
type bundle struct {
	objs    []api.Object
	sources []string
}

// loadFiles reads every -f argument (a file, a directory read recursively,
// or "-" for stdin) into one bundle. Every problem of every file is
// reported at once.
func loadFiles(a *app, files []string) (*bundle, error) {
	if len(files) == 0 {
		return nil, usageErrorf("give the manifests with -f FILE|DIR|- (repeatable)")
	}
	b := &bundle{}
	var problems manifests.Errors
	stdin := false
	for _, f := range files {
		if f == "-" {
			if stdin {
				return nil, usageErrorf("-f - (stdin) may be given only once")
			}
			stdin = true
		}
		objs, err := manifests.Load(f, a.in)
		if err != nil {
			var es manifests.Errors
			if errors.As(err, &es) {
				problems = append(problems, es...)
				continue
			}
			return nil, err
		}
		for _, o := range objs {
			b.objs = append(b.objs, o)
			b.sources = append(b.sources, f)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	if len(b.objs) == 0 {
		return nil, fmt.Errorf("no objects found in %v", files)
	}
	return b, nil
}

// docRE matches the server's name for a document of a bundle.
var docRE = regexp.MustCompile(`document (\d+)( \([^)]*\))?`)

// localize rewrites the server's "document N (Kind/name)" (N counts
// objects across every -f) to name the -f argument the object came from:
// "FILE: Kind/name" in field paths, "Kind/name (FILE)" in the message.
func (b *bundle) localize(err error) error {
	ae, ok := errors.AsType[*client.APIError](err)
	if !ok {
		return err
	}
	rewrite := func(s string, field bool) string {
		return docRE.ReplaceAllStringFunc(s, func(m string) string {
			n, _ := strconv.Atoi(docRE.FindStringSubmatch(m)[1])
			if n < 1 || n > len(b.objs) {
				return m
			}
			src := b.sources[n-1]
			if src == "-" {
				src = "<stdin>"
			}
			if field {
				return src + ": " + api.Ref(b.objs[n-1])
			}
			return api.Ref(b.objs[n-1]) + " (" + src + ")"
		})
	}
	ae.Message = rewrite(ae.Message, false)
	for i, d := range ae.Details {
		ae.Details[i].Field = rewrite(d.Field, true)
	}
	return err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func newApplyCmd(a *app) *cobra.Command {
	var files []string
	var dryRun, wait bool
	var output string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- [-f …]",
		Short: "Create or update objects from manifests",
		Long: `Create or update the Nodes and Deployments in the manifests, all in one
transaction on the server: every object is applied or none is.

Manifests are YAML (several documents separated by ---) or JSON (an object,
an array or a List). -f takes a file, a directory (read recursively: *.yaml,
*.yml, *.json) or - for stdin, and may be repeated. The output of
'bakery get -o yaml' or '-o json' applies unchanged.

Each object is reported as created, configured (its labels, annotations or
spec changed; a spec change increases metadata.generation) or unchanged.
Invalid manifests are rejected with every problem and its field path, and
nothing is applied. Exit code 0 on success, 1 on any error.

With --wait, apply then follows every deployment until its status describes
the applied spec and no rollout is in progress, printing each node's current
step as it changes, and exits 1 if a rollout failed (the previous revision
keeps serving) or --timeout passed.`,
		Example: `  bakery apply -f examples/hello/app.yaml
  bakery apply -f nodes.yaml -f apps/
  bakery get deployment hello -o yaml | bakery apply -f -

  # What would change, without changing anything
  bakery apply -f apps/ --dry-run`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "name" && output != "json" {
				return usageErrorf("--output must be name or json, not %q", output)
			}
			b, err := loadFiles(a, files)
			if err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			resp, err := c.Apply(cmd.Context(), b.objs, dryRun)
			if err != nil {
				return b.localize(a.explain(c, err))
			}
			if output == "json" {
				return writeJSON(a.out, resp)
			}
			suffix := ""
			if resp.DryRun {
				suffix = " (dry run)"
			}
			for _, r := range resp.Results {
				if output == "name" {
					fmt.Fprintln(a.out, qualifiedName(r.Kind, r.Name))
					continue
				}
				fmt.Fprintf(a.out, "%s %s%s\n", qualifiedName(r.Kind, r.Name), r.Action, suffix)
			}
			if !wait || resp.DryRun {
				return nil
			}
			gens := map[string]int64{}
			for _, r := range resp.Results {
				if r.Kind == api.KindDeployment {
					gens[r.Name] = r.Generation
				}
			}
			return waitApplied(cmd.Context(), a.out, c, gens, timeout)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory (recursive) or - for stdin; repeatable")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "ask the server what would change, and change nothing")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every deployment is rolled out, showing each node's current step; exit 1 if a rollout fails")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output: name (TYPE/NAME per object) or json (the server's answer); default: TYPE/NAME ACTION")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}
