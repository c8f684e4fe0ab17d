package deployment

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/reconciler/internal/controller"
	"bakery.dev/bakery/reconciler/internal/testenv"
)

// TestDeleteManyForgetsPorts deletes 100 deployments at once through the
// controller on PostgreSQL: none leaves a port booking behind (the
// deleted object's store event cancels its reconcile, which used to
// forget the bookings after the delete, with that cancelled context).
func TestDeleteManyForgetsPorts(t *testing.T) {
	const n = 100
	ctx := t.Context()
	st, err := pgstore.Open(ctx, pgtest.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	coord, err := pgstore.NewCoordinator(ctx, st, "server-a", pgstore.CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(context.Background())
	coordDone := make(chan struct{})
	go func() { defer close(coordDone); coord.Run(cctx) }()
	t.Cleanup(func() { stop(); <-coordDone })

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range n {
		name := fmt.Sprintf("app%03d", i)
		d := helloDeploymentFor(name, "/nonexistent")
		d.Spec.Nodes = nil // on no node: removing it is only the store's work
		if _, err := st.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := coord.BookPorts(ctx, "n1", name, func(map[int]bool) ([]int, error) { return []int{20000 + 2*i, 20001 + 2*i}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	// Every deletion requested at once, as `bakery delete` of many does;
	// then the control loop starts on all of them.
	now := time.Now().UTC().Format(time.RFC3339)
	for i := range n {
		o, err := st.Get(ctx, api.KindDeployment, fmt.Sprintf("app%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		o.GetObjectMeta().Annotations = map[string]string{api.AnnotationDeletionRequested: now}
		if _, err := st.Update(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	rec := &Reconciler{Store: st, Ports: coord, Logger: log}
	ctl := controller.New(st, rec, controller.Options{Kind: api.KindDeployment, Workers: 8, Locker: coord, Logger: log,
		BaseBackoff: 50 * time.Millisecond, LockRetry: 100 * time.Millisecond})
	rctx, stopCtl := context.WithCancel(ctx)
	ctlDone := make(chan struct{})
	go func() { defer close(ctlDone); ctl.Run(rctx) }()
	t.Cleanup(func() { stopCtl(); <-ctlDone })

	testenv.Eventually(t, "every deployment deleted", func() bool {
		objs, err := st.List(ctx, api.KindDeployment, store.ListOptions{})
		return err == nil && len(objs) == 0
	})
	var taken map[int]bool
	if err := coord.BookPorts(ctx, "n1", "probe", func(tk map[int]bool) ([]int, error) { taken = tk; return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if len(taken) != 0 {
		t.Fatalf("%d port bookings left behind by %d deleted deployments", len(taken), n)
	}
}
