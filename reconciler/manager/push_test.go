package manager

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
)

func TestHandlePush(t *testing.T) {
	ctx := t.Context()
	st := testenv.FileStore(t)
	id, err := nodeconn.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Store: st, Identity: id, DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const c = "0123456789abcdef0123456789abcdef01234567"
	mk := func(name, repo, ref, commit string) {
		d := helloDeploymentFor(name, repo)
		d.Spec.Source.Ref, d.Spec.Source.Commit = ref, commit
		if _, err := st.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	mk("main-https", "https://github.com/acme/app.git", "main", "")
	mk("main-ssh", "git@github.com:Acme/App", "refs/heads/main", "")
	mk("dev", "https://github.com/acme/app", "dev", "")
	mk("pinned", "https://github.com/acme/app", "main", c)
	mk("tag", "https://github.com/acme/app", "v1", "")
	mk("other-repo", "https://github.com/acme/other", "main", "")
	ms := manifestSource("src", "https://github.com/acme/app")
	ms.Spec.Branch = "main"
	if _, err := st.Create(ctx, ms); err != nil {
		t.Fatal(err)
	}
	// A rolled-back deployment stays on its commit.
	mk("rolled-back", "https://github.com/acme/app", "main", "")
	o, _ := st.Get(ctx, api.KindDeployment, "rolled-back")
	rb := o.(*api.Deployment)
	rb.Status.Pin = &api.CommitPin{Commit: c, Reason: api.TriggerRollback, Generation: rb.Metadata.Generation}
	if _, err := st.UpdateStatus(ctx, rb); err != nil {
		t.Fatal(err)
	}

	push := api.Push{Delivery: "d1", Repos: []string{"https://github.com/acme/app.git", "git@github.com:acme/app.git"}, Ref: "refs/heads/main", After: c}
	out, err := m.HandlePush(ctx, push)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out.Triggered)
	slices.Sort(out.Ignored)
	if fmt.Sprint(out.Triggered) != "[Deployment/main-https Deployment/main-ssh ManifestSource/src]" ||
		fmt.Sprint(out.Ignored) != "[Deployment/dev Deployment/pinned Deployment/rolled-back Deployment/tag]" {
		t.Fatalf("main push: %+v", out)
	}
	// The deployments that follow the pushed ref record the push in the
	// store (whichever control plane reconciles them finds it there);
	// the others do not.
	for name, want := range map[string]bool{"main-https": true, "main-ssh": true, "dev": false, "rolled-back": false} {
		o, _ := st.Get(ctx, api.KindDeployment, name)
		p := o.(*api.Deployment).Status.LastPush
		if got := p != nil && p.Commit == c && p.Delivery == "d1" && p.Ref == "refs/heads/main"; got != want {
			t.Errorf("%s: status.lastPush %+v, recorded: %v, want %v", name, p, got, want)
		}
	}
	out, _ = m.HandlePush(ctx, api.Push{Repos: push.Repos, Ref: "refs/tags/v1", After: c})
	if fmt.Sprint(out.Triggered) != "[Deployment/tag]" {
		t.Fatalf("tag push: %+v", out)
	}
	// Events say why.
	evs, err := st.(store.Events).ListEvents(ctx, "Deployment/dev", 0)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Type != api.EventPushIgnored {
		t.Fatalf("events of dev: %v %v", evs, err)
	}
	if evs, _ := st.(store.Events).ListEvents(ctx, "Deployment/main-https", 0); len(evs) != 2 || evs[1].Type != api.EventPushReceived || evs[0].Type != api.EventPushIgnored {
		t.Fatalf("events of main-https: %v", evs)
	}
	// A pinned deployment's PushIgnored (with the commit, once per
	// commit) is the reconcile's to record, webhook or not.
	// (The tag push is ignored as for any deployment following main.)
	if evs, _ := st.(store.Events).ListEvents(ctx, "Deployment/rolled-back", 0); len(evs) != 1 || !strings.Contains(evs[0].Message, "follows main") {
		t.Fatalf("the webhook recorded events of a pinned deployment: %+v", evs)
	}
	if evs, _ := st.(store.Events).ListEvents(ctx, "Deployment/other-repo", 0); len(evs) != 0 {
		t.Fatalf("another repository's deployment got events: %v", evs)
	}
	// The queue is bounded: QueuePush never blocks.
	for range pushQueueLen {
		if err := m.QueuePush(push); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.QueuePush(push); err != api.ErrPushQueueFull {
		t.Fatalf("full queue: %v", err)
	}
}
