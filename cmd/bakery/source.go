package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
)

func newSourceCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "source",
		Short: "Show and sync manifest sources (git repositories of manifests)",
		Long: `A ManifestSource is a directory of a git branch holding Bakery manifests.
The server fetches it on a push webhook and every spec.interval, decodes every
manifest strictly and applies them as one unit: a commit with any invalid
manifest applies nothing and its error shows in the source's status. Objects
the source created carry the annotation bakery.dev/owner=ManifestSource/<name>;
those removed from the repository are pruned (deployments are removed from
their nodes first). Objects created by hand are never pruned.

Create one with 'bakery apply -f source.yaml'.`,
	}
	get := &cobra.Command{
		Use:   "get [NAME]",
		Short: "List manifest sources with their last synced commit",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ts := []target{{kind: api.KindManifestSource}}
			if len(args) == 1 {
				ts[0].name = args[0]
			}
			objs, failed, err := fetch(cmd, a, c, ts, "")
			if err != nil {
				return err
			}
			tw := newTabWriter(a.out)
			sourceTable(tw, objs, time.Now())
			if err := tw.Flush(); err != nil {
				return err
			}
			if failed > 0 {
				return &exitCodeError{code: exitError}
			}
			return nil
		},
	}
	desc := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a manifest source: spec, last sync, what it created, changed and pruned",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			o, err := c.Get(cmd.Context(), api.KindManifestSource, args[0])
			if err != nil {
				return err
			}
			describeWithLease(a.out, o, time.Now(), objectLeases(cmd.Context(), c)[api.KindManifestSource+"/"+args[0]], objectEvents(cmd.Context(), a, c, o)...)
			return nil
		},
	}
	var wait time.Duration
	sync := &cobra.Command{
		Use:   "sync NAME",
		Short: "Fetch and apply a manifest source now",
		Long: `Ask the server to fetch and apply a manifest source now instead of at its
next interval. With --wait, wait until the source has been synced (or has failed)
and print the outcome.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			id, err := c.SyncSource(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "manifestsource/%s sync requested\n", args[0])
			if wait <= 0 {
				return nil
			}
			deadline := time.Now().Add(wait)
			for {
				o, err := c.Get(ctx, api.KindManifestSource, args[0])
				if err != nil {
					return err
				}
				s := o.(*api.ManifestSource).Status
				if s.SyncHandled == id {
					if s.LastError != "" {
						return fmt.Errorf("sync failed: %s", s.LastError)
					}
					fmt.Fprintf(a.out, "synced commit %s (%d objects); last changes: %s\n", shortCommit(s.LastSyncedCommit), len(s.Inventory), syncSummary(s))
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("the sync did not finish within %s", wait)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
	sync.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for the outcome (0: do not wait)")
	cmd.AddCommand(get, desc, sync)
	return cmd
}

func syncSummary(s api.ManifestSourceStatus) string {
	var parts []string
	for _, l := range []struct {
		what  string
		names []string
	}{{"created", s.Created}, {"changed", s.Changed}, {"pruned", s.Pruned}} {
		if len(l.names) > 0 {
			parts = append(parts, l.what+" "+strings.Join(l.names, ", "))
		}
	}
	if len(parts) == 0 {
		return "no changes"
	}
	if s.DryRun {
		return "dry run, would have " + strings.Join(parts, "; ")
	}
	return strings.Join(parts, "; ")
}

func sourceTable(w io.Writer, objs []api.Object, now time.Time) {
	fmt.Fprintln(w, "NAME\tREADY\tCOMMIT\tREPO\tBRANCH\tPATH\tLAST-SYNC\tAGE")
	for _, o := range objs {
		ms := o.(*api.ManifestSource)
		ready := string(api.ConditionUnknown)
		if c := api.FindCondition(ms.Status.Conditions, api.ConditionReady); c != nil {
			ready = string(c.Status)
			if c.Reason == "DryRun" {
				ready += "(dry-run)"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ms.Metadata.Name, ready, orDash(shortCommit(ms.Status.LastSyncedCommit)),
			printable(ms.Spec.Repo), orDash(ms.Spec.Branch), orDash(ms.Spec.Path), ago(ms.Status.LastSyncTime, now), age(ms.Metadata.CreationTimestamp, now))
	}
}

func describeSource(d describer, ms *api.ManifestSource, now time.Time) {
	s := ms.Spec
	d.section(0, "Spec")
	d.line(1, "Repo", "%s", printable(s.Repo))
	d.line(1, "Branch", "%s", orDash(s.Branch))
	d.line(1, "Path", "%s", orDash(s.Path))
	if s.Interval != nil {
		d.line(1, "Interval", "%s", s.Interval.String())
	}
	d.line(1, "Prune", "%v", s.PruneEnabled())
	d.line(1, "Dry run", "%v", s.DryRun)
	if s.Suspend {
		d.line(1, "Suspended", "true")
	}
	st := ms.Status
	d.section(0, "Status")
	d.line(1, "Last synced commit", "%s", orDash(st.LastSyncedCommit))
	if st.LastAttemptedCommit != "" && st.LastAttemptedCommit != st.LastSyncedCommit {
		d.line(1, "Last attempted", "%s", st.LastAttemptedCommit)
	}
	d.line(1, "Last sync", "%s", ago(st.LastSyncTime, now))
	d.line(1, "Last error", "%s", orNone(printable(oneLine(st.LastError))))
	verb := ""
	if st.DryRun {
		verb = "would be "
	}
	d.line(1, "Created", "%s%s", verb, orNone(strings.Join(st.Created, ", ")))
	d.line(1, "Changed", "%s%s", verb, orNone(strings.Join(st.Changed, ", ")))
	d.line(1, "Pruned", "%s%s", verb, orNone(strings.Join(st.Pruned, ", ")))
	d.line(1, "Objects", "%d: %s", len(st.Inventory), orNone(strings.Join(st.Inventory, ", ")))
	conditions(d, st.Conditions, now)
}

func newWebhookCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Manage push webhook secrets",
		Long: `A push webhook tells the server that a repository changed: deployments and
manifest sources following the pushed branch fetch it at once. Deliveries are
signed with HMAC-SHA256 (X-Hub-Signature-256) under a secret per repository,
which the server keeps encrypted and shows only once, when it is created.

GitHub: add a webhook with the payload URL printed by 'webhook create', content
type application/json, the secret, and the push event. Other git hosts: POST
{"repo": URL, "ref": "refs/heads/BRANCH", "after": COMMIT} to the generic URL
with X-Bakery-Delivery (a unique id) and X-Hub-Signature-256 headers.`,
	}
	var rotate bool
	create := &cobra.Command{
		Use:   "create REPO",
		Short: "Create (or --rotate) a repository's webhook secret and print it once",
		Args:  exactArgs(1, "REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ws, err := c.CreateWebhookSecret(cmd.Context(), args[0], rotate)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Repository:  %s\nGitHub URL:  %s\nGeneric URL: %s\nSecret:      %s\n", ws.Repo, ws.GitHubURL, ws.GenericURL, ws.Secret)
			fmt.Fprintln(a.errOut, "The secret is shown only this once: store it in the webhook's settings now.")
			return nil
		},
	}
	create.Flags().BoolVar(&rotate, "rotate", false, "replace an existing secret (deliveries signed with the old one are refused from now on)")
	get := &cobra.Command{
		Use:   "get REPO",
		Short: "Say whether a repository has a webhook secret (never printing it)",
		Args:  exactArgs(1, "REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ws, err := c.GetWebhookSecret(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Repository:  %s\nCreated:     %s\nGitHub URL:  %s\nGeneric URL: %s\nSecret:      (set; shown only when created)\n",
				ws.Repo, ws.CreatedAt.Format(time.RFC3339), ws.GitHubURL, ws.GenericURL)
			return nil
		},
	}
	cmd.AddCommand(create, get, newWebhookImportCmd(a))
	return cmd
}

func newWebhookImportCmd(a *app) *cobra.Command {
	var file string
	var replace bool
	cmd := &cobra.Command{
		Use:   "import -f FILE",
		Short: "Restore the webhook secrets of 'bakery export --secrets'",
		Long: `Restore the webhook secrets that 'bakery export --secrets' wrote (sealed,
as "# bakery-webhook-secret:" comment lines) into this server. They open only
on a server holding the encryption key they were sealed with, each only as
the secret of its own repository. A repository that has a secret already
keeps it unless --replace is given.`,
		Example: `  bakery apply -f backup.yaml && bakery webhook import -f backup.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErrorf("-f FILE is required")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			ws, err := readWebhookSecrets(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if len(ws) == 0 {
				return fmt.Errorf("%s holds no webhook secrets (was it written by 'bakery export --secrets'?)", file)
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			for _, w := range ws {
				if _, err := c.RestoreWebhookSecret(cmd.Context(), w.Repo, w.Sealed, replace); err != nil {
					return fmt.Errorf("webhook secret of %s: %w", w.Repo, a.explain(c, err))
				}
				fmt.Fprintf(a.out, "webhook secret of %s restored\n", w.Repo)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the export to read")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace a repository's existing secret")
	return cmd
}

// exactArgs wants n positional arguments, naming them in the usage error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%q takes %s, got %d argument(s)", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}

func newGitHubCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "github",
		Short: "Sign in to GitHub, list repositories and branches, register push webhooks",
		Long: `The server's GitHub integration (bakery server --github-client-id, with the
OAuth app's secret in BAKERY_GITHUB_CLIENT_SECRET). 'login' prints a URL to open
in a browser; GitHub sends the browser back to the server, which keeps the
token encrypted, per API token. Then 'repos' and 'branches' list what the
signed-in user can reach, and 'hook' registers the push webhook on a
repository with a newly generated secret (sent to GitHub, kept encrypted by the
server, never printed).`,
	}
	login := &cobra.Command{
		Use:   "login",
		Short: "Print the URL that signs this API token in to GitHub",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			u, err := c.GitHubLogin(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.errOut, "Open this URL in a browser to sign in to GitHub (valid for 10 minutes):\n")
			fmt.Fprintln(a.out, u)
			return nil
		},
	}
	repos := &cobra.Command{
		Use:   "repos",
		Short: "List the signed-in user's repositories",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			rs, err := c.GitHubRepos(cmd.Context())
			if err != nil {
				return err
			}
			tw := newTabWriter(a.out)
			fmt.Fprintln(tw, "REPOSITORY\tPRIVATE\tDEFAULT-BRANCH\tCLONE-URL")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", printable(r.FullName), r.Private, printable(r.DefaultBranch), printable(r.CloneURL))
			}
			return tw.Flush()
		},
	}
	branches := &cobra.Command{
		Use:   "branches OWNER/REPO",
		Short: "List a repository's branches",
		Args:  exactArgs(1, "OWNER/REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			bs, err := c.GitHubBranches(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := newTabWriter(a.out)
			fmt.Fprintln(tw, "BRANCH\tCOMMIT")
			for _, b := range bs {
				fmt.Fprintf(tw, "%s\t%s\n", printable(b.Name), printable(b.Commit))
			}
			return tw.Flush()
		},
	}
	hook := &cobra.Command{
		Use:   "hook OWNER/REPO",
		Short: "Register the push webhook on a repository (a new secret; an old one stops working)",
		Args:  exactArgs(1, "OWNER/REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			h, err := c.GitHubCreateHook(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "webhook %d registered on %s: pushes go to %s\n", h.ID, h.Repo, h.URL)
			return nil
		},
	}
	cmd.AddCommand(login, repos, branches, hook)
	return cmd
}
