// Package queue is the reconciler's work queue: keys are de-duplicated,
// a key is handed to at most one worker at a time, keys can be added after
// a delay, and failing keys are retried with exponential backoff and
// jitter. It is modelled on client-go's workqueue, reduced to what Bakery
// needs.
package queue

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"time"
)

// Queue holds keys waiting to be processed.
//
// The contract: Get hands out a key and marks it processing; the caller
// must call Done(key) when finished. A key added while it is processing is
// handed out again after Done (never to two workers at once). Adding a key
// that is already waiting does nothing.
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	order      []string             // waiting keys, FIFO
	waiting    map[string]bool      // keys in order
	processing map[string]bool      // keys handed out, not yet Done
	dirty      map[string]bool      // added while processing
	delayed    delayHeap            // keys to add later
	delayedAt  map[string]time.Time // earliest pending delayed add per key
	failures   map[string]int
	shutdown   bool
	wake       chan struct{}

	// BaseDelay and MaxDelay bound the exponential backoff.
	BaseDelay, MaxDelay time.Duration
}

// New returns an empty queue with the given backoff bounds.
func New(base, max time.Duration) *Queue {
	q := &Queue{
		waiting:    map[string]bool{},
		processing: map[string]bool{},
		dirty:      map[string]bool{},
		delayedAt:  map[string]time.Time{},
		failures:   map[string]int{},
		wake:       make(chan struct{}, 1),
		BaseDelay:  base,
		MaxDelay:   max,
	}
	q.cond = sync.NewCond(&q.mu)
	go q.delayLoop()
	return q
}

// Add makes key ready now.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shutdown || q.waiting[key] {
		return
	}
	if q.processing[key] {
		q.dirty[key] = true
		return
	}
	q.waiting[key] = true
	q.order = append(q.order, key)
	q.cond.Signal()
}

// AddAfter makes key ready after d. Of several pending delayed adds of one
// key, the earliest wins.
func (q *Queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	at := time.Now().Add(d)
	if prev, ok := q.delayedAt[key]; ok && !at.Before(prev) {
		return
	}
	q.delayedAt[key] = at
	heap.Push(&q.delayed, delayed{key: key, at: at})
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// AddRateLimited adds key after its backoff delay and counts a failure.
func (q *Queue) AddRateLimited(key string) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	q.AddAfter(key, q.backoff(n))
}

// Backoff returns the delay after n earlier failures: BaseDelay·2ⁿ with
// ±20 % jitter so that many failing keys spread out, capped at MaxDelay
// (after the jitter: a failing key is retried at least once per
// MaxDelay).
func (q *Queue) backoff(n int) time.Duration {
	d := q.BaseDelay
	for i := 0; i < n && d < q.MaxDelay; i++ {
		d *= 2
	}
	jitter := 0.8 + 0.4*rand.Float64()
	return min(time.Duration(float64(d)*jitter), q.MaxDelay)
}

// Failures returns how many times key failed since its last Forget.
func (q *Queue) Failures(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[key]
}

// Forget resets key's backoff.
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
}

// Get blocks until a key is ready or the queue shuts down (ok false).
func (q *Queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if len(q.order) == 0 {
		return "", false
	}
	key = q.order[0]
	q.order[0] = ""
	q.order = q.order[1:]
	delete(q.waiting, key)
	q.processing[key] = true
	return key, true
}

// Done marks key finished; if it was added meanwhile it becomes ready again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] {
		delete(q.dirty, key)
		q.addLocked(key)
	}
}

// Len returns how many keys are ready.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// ShutDown stops the queue: Get returns false at once, ready and delayed
// keys are dropped, later adds are ignored.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	q.shutdown = true
	q.order = nil
	q.waiting = map[string]bool{}
	q.cond.Broadcast()
	close(q.wake)
}

func (q *Queue) delayLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		now := time.Now()
		for q.delayed.Len() > 0 && !q.delayed[0].at.After(now) {
			d := heap.Pop(&q.delayed).(delayed)
			if at, ok := q.delayedAt[d.key]; ok && at.Equal(d.at) {
				delete(q.delayedAt, d.key)
				q.addLocked(d.key)
			}
		}
		wait := time.Hour
		if q.delayed.Len() > 0 {
			wait = q.delayed[0].at.Sub(now)
		}
		q.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case _, ok := <-q.wake:
			if !ok {
				return
			}
		case <-timer.C:
		}
	}
}

type delayed struct {
	key string
	at  time.Time
}

type delayHeap []delayed

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
