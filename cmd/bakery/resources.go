package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
)

// target names what a command works on: one object, or every object of a
// kind when name is empty.
type target struct {
	kind, name string
}

// parseTargets reads kubectl-style resource arguments:
//
//	TYPE[,TYPE…] [NAME…]     e.g. "deployments", "deploy hello web", "nodes,deployments"
//	TYPE/NAME [TYPE/NAME…]   e.g. "node/web-1 deployment/hello"
//
// Types are resolved with api.KindFor ("no", "node", "nodes", "Node", …).
// With needName every target must name an object.
func parseTargets(args []string, needName bool) ([]target, error) {
	if len(args) == 0 {
		return nil, usageErrorf("name a resource type (nodes, deployments, manifestsources) or TYPE/NAME")
	}
	var ts []target
	if strings.Contains(args[0], "/") {
		for _, arg := range args {
			typ, name, ok := strings.Cut(arg, "/")
			if !ok {
				return nil, usageErrorf("%q: give every argument as TYPE/NAME once the first one is (or use TYPE NAME…)", arg)
			}
			kind, err := api.KindFor(typ)
			if err != nil {
				return nil, &usageError{err}
			}
			if name == "" {
				return nil, usageErrorf("%q: no name after the '/'", arg)
			}
			ts = append(ts, target{kind, name})
		}
		return ts, nil
	}
	var kinds []string
	for typ := range strings.SplitSeq(args[0], ",") {
		kind, err := api.KindFor(strings.TrimSpace(typ))
		if err != nil {
			return nil, &usageError{err}
		}
		kinds = append(kinds, kind)
	}
	names := args[1:]
	for _, n := range names {
		if strings.Contains(n, "/") {
			return nil, usageErrorf("%q: there is no need to give a resource type as a separate argument when using TYPE/NAME", n)
		}
	}
	if len(names) == 0 && needName {
		return nil, usageErrorf("name the %s to act on: %s NAME…", strings.ToLower(kinds[0]), strings.ToLower(kinds[0]))
	}
	for _, kind := range kinds {
		if len(names) == 0 {
			ts = append(ts, target{kind: kind})
		}
		for _, n := range names {
			ts = append(ts, target{kind, n})
		}
	}
	return ts, nil
}

// qualifiedName is how kubectl names an object in its messages:
// "deployment.bakery.dev/hello".
func qualifiedName(kind, name string) string {
	return strings.ToLower(kind) + "." + api.Group + "/" + name
}

// objName is qualifiedName for an object.
func objName(o api.Object) string {
	return qualifiedName(o.GetTypeMeta().Kind, o.GetObjectMeta().Name)
}

// resourceTypes are offered by shell completion.
var resourceTypes = []string{"nodes", "deployments"}

// completeTargets completes resource types first, then names of the
// chosen type (asking the server, when one is configured).
func completeTargets(a *app) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 && !strings.Contains(toComplete, "/") {
			return resourceTypes, cobra.ShellCompDirectiveNoFileComp
		}
		typ, prefix := "", ""
		switch {
		case strings.Contains(toComplete, "/"):
			typ, _, _ = strings.Cut(toComplete, "/")
			prefix = typ + "/"
		case strings.Contains(args[0], "/"):
			return nil, cobra.ShellCompDirectiveNoFileComp
		default:
			typ, _, _ = strings.Cut(args[0], ",")
		}
		kind, err := api.KindFor(typ)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := a.client(cmd)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		objs, err := c.List(cmd.Context(), kind, "")
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, o := range objs {
			out = append(out, prefix+o.GetObjectMeta().Name)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// notFoundError is how a missing object is reported.
func notFoundError(kind, name string) error {
	return fmt.Errorf("%s %q not found", api.Resource(kind), name)
}
