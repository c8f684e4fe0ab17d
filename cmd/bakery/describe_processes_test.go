package main

import (
	"bytes"
	"regexp"
	"testing"
	"text/tabwriter"

	"bakery.dev/bakery/api"
)

// TestDescribeProcesses: describe lists each node's processes, running
// over wanted instances and their revision; get -o wide sums them.
func TestDescribeProcesses(t *testing.T) {
	d := &api.Deployment{Metadata: api.ObjectMeta{Name: "hello"}}
	d.Spec.Processes = []api.Process{{Name: "worker", Command: "w", Replicas: 2}}
	d.Status.Nodes = []api.NodeAppStatus{
		{Node: "web-1", Processes: []api.ProcessStatus{{Name: "worker", Replicas: 2, Running: 2, Revision: 4}}},
		{Node: "web-2", Processes: []api.ProcessStatus{{Name: "worker", Replicas: 2, Running: 1, Revision: 4}}},
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	describeProcesses(describer{tw: tw}, d.Status.Nodes)
	tw.Flush()
	if !regexp.MustCompile(`(?m)^Processes:\n  NODE +PROCESS +RUNNING +REVISION\n  web-1 +worker +2/2 +4\n  web-2 +worker +1/2 +4\n$`).MatchString(b.String()) {
		t.Errorf("describe processes:\n%s", b.String())
	}
	if got := processesColumn(d); got != "worker:3/4" {
		t.Errorf("PROCESSES column %q, want worker:3/4", got)
	}
}
