package deployment

import (
	"context"
	"hash/fnv"
	"slices"
	"sync"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/nodescript"
)

// planWithReservations plans one node, treating ports that other apps'
// rollouts in flight have booked as used, and books the ports its own
// plan uses until the next plan of this app on this node.
func (r *Reconciler) planWithReservations(ctx context.Context, n *nodeRun, obs nodescript.Observed) ([]Action, error) {
	var plan []Action
	err := r.portBook().BookPorts(ctx, n.node, n.app, func(taken map[int]bool) ([]int, error) {
		used := make(map[int]bool, len(obs.UsedPorts)+len(taken))
		for p := range obs.UsedPorts {
			used[p] = true
		}
		for p := range taken {
			used[p] = true
		}
		o := obs
		o.UsedPorts = used
		var err error
		plan, err = Plan(n.desired, o)
		if err != nil {
			return nil, err
		}
		var mine []int
		for _, a := range plan {
			if a.Port != 0 && !slices.Contains(mine, a.Port) {
				mine = append(mine, a.Port)
			}
		}
		return mine, nil
	})
	return plan, err
}

func (r *Reconciler) portBook() store.PortBook {
	if r.Ports != nil {
		return r.Ports
	}
	return &r.memPorts
}

// memPortBook is the PortBook of a single control plane.
type memPortBook struct {
	mu    sync.Mutex
	ports map[string]map[int]string // node → port → app
}

// BookPorts implements store.PortBook.
func (b *memPortBook) BookPorts(_ context.Context, node, app string, plan func(map[int]bool) ([]int, error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	taken := map[int]bool{}
	for p, a := range b.ports[node] {
		if a != app {
			taken[p] = true
		}
	}
	mine, err := plan(taken)
	if err != nil {
		return err
	}
	if b.ports == nil {
		b.ports = map[string]map[int]string{}
	}
	res := b.ports[node]
	if res == nil {
		res = map[int]string{}
		b.ports[node] = res
	}
	for p, a := range res {
		if a == app {
			delete(res, p)
		}
	}
	for _, p := range mine {
		res[p] = app
	}
	return nil
}

// ForgetPorts implements store.PortBook.
func (b *memPortBook) ForgetPorts(_ context.Context, app string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, res := range b.ports {
		for p, a := range res {
			if a == app {
				delete(res, p)
			}
		}
	}
	return nil
}

// portStart is where an app's search for free ports begins: a hash of its
// name, even, so that its two slots tend to sit side by side.
func (r *Reconciler) portStart(app string) int {
	h := fnv.New32a()
	h.Write([]byte(app))
	span := r.portMax() - r.portMin() + 1
	return r.portMin() + int(h.Sum32()%uint32(span))&^1
}
