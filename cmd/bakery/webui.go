package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/ui"
	"bakery.dev/bakery/reconciler/notify"
)

// webUIConfig returns the web UI's configuration for st, and the one-time
// setup token when st holds no user yet.
func webUIConfig(ctx context.Context, st store.Store, targets []notify.Target) (ui.Config, string, error) {
	acc, ok := st.(store.Accounts)
	if !ok {
		return ui.Config{}, "", fmt.Errorf("the %T store keeps no accounts: no web UI", st)
	}
	setup, err := auth.NeedsSetup(ctx, acc)
	if err != nil {
		return ui.Config{}, "", err
	}
	var notes []string
	for _, t := range targets {
		notes = append(notes, t.String()) // scheme and host only: paths hold secrets
	}
	return ui.Config{SetupToken: setup, Notify: notes}, setup, nil
}

// printWebUI tells where the web UI is and, on a first start, the setup
// link that creates its first user.
func printWebUI(w io.Writer, base, setup string) {
	fmt.Fprintf(w, "Web UI: %s%s/\n", base, ui.Prefix)
	if setup != "" {
		fmt.Fprintf(w, "No web UI user yet: create the first one (link works once, until the server restarts):\n  %s%s/setup?token=%s\n", base, ui.Prefix, url.QueryEscape(setup))
		fmt.Fprintf(w, "  or on this host: bakery admin create NAME\n")
	}
}

type adminOptions struct {
	data, databaseURL string
}

func newAdminCmd(a *app) *cobra.Command {
	o := adminOptions{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage web UI users on the server host",
		Long: `Manage web UI users directly in the server's store, on the server host.

With the file store the server must be stopped (the data directory is
locked while it runs): use the setup link the server printed, or the web
UI's settings page, instead.`,
	}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a web UI user; the password is read from standard input",
		Example: `  bakery admin create alice            # asks for the password
  printf '%s\n' "$PASSWORD" | bakery admin create alice`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("database-url") {
				o.databaseURL = os.Getenv("DATABASE_URL")
			}
			return runAdminCreate(cmd.Context(), a, o, args[0])
		},
	}
	f := create.Flags()
	f.StringVar(&o.data, "data", defaultDataDir(), "data directory of the file store (env BAKERY_DATA)")
	f.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL of the postgres store (env DATABASE_URL)")
	cmd.AddCommand(create)
	return cmd
}

func runAdminCreate(ctx context.Context, a *app, o adminOptions, name string) error {
	if err := store.CheckUserName(name); err != nil {
		return usageErrorf("%v", err)
	}
	if f, ok := a.in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(a.errOut, "Password for %s (shown as you type; at least %d characters): ", name, auth.MinPasswordLen)
		}
	}
	line, err := bufio.NewReader(a.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if err := auth.CheckPassword(pw); err != nil {
		return usageErrorf("%v", err)
	}
	var st store.Store
	if o.databaseURL != "" {
		if st, err = pgstore.Open(ctx, o.databaseURL); err != nil {
			return fmt.Errorf("open postgres store: %w", err)
		}
	} else if st, err = filestore.Open(o.data); err != nil {
		return fmt.Errorf("open file store %s: %w", o.data, err)
	}
	defer st.Close()
	acc, ok := st.(store.Accounts)
	if !ok {
		return fmt.Errorf("the %T store keeps no accounts", st)
	}
	if err := auth.CreateUser(ctx, acc, name, pw, 0, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "user %s created\n", name)
	return nil
}
