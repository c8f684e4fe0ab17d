package queue

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestDedupeAndExclusivity(t *testing.T) {
	q := New(time.Millisecond, time.Second)
	defer q.ShutDown()
	q.Add("a")
	q.Add("a")
	q.Add("b")
	if q.Len() != 2 {
		t.Fatalf("len = %d, want 2 (a de-duplicated)", q.Len())
	}
	k, ok := q.Get()
	if !ok || k != "a" {
		t.Fatalf("get = %q %v, want a (FIFO)", k, ok)
	}
	// a is processing: adding it again must not hand it to a second worker.
	q.Add("a")
	if k2, _ := q.Get(); k2 != "b" {
		t.Fatalf("second get = %q, want b", k2)
	}
	if q.Len() != 0 {
		t.Fatalf("a handed out twice: len %d", q.Len())
	}
	q.Done("a")
	if q.Len() != 1 {
		t.Fatal("a added while processing must be ready after Done")
	}
	if k3, _ := q.Get(); k3 != "a" {
		t.Fatalf("third get = %q, want a", k3)
	}
	q.Done("a")
	q.Done("b")
	if q.Len() != 0 {
		t.Fatalf("len = %d after all done", q.Len())
	}
}

func TestAddAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(time.Second, time.Minute)
		defer q.ShutDown()
		q.AddAfter("late", 10*time.Second)
		q.AddAfter("early", 2*time.Second)
		q.AddAfter("late", 30*time.Second) // later than pending: ignored
		start := time.Now()
		k, _ := q.Get()
		if k != "early" || time.Since(start) != 2*time.Second {
			t.Fatalf("got %q after %v, want early after 2s", k, time.Since(start))
		}
		q.Done(k)
		k, _ = q.Get()
		if k != "late" || time.Since(start) != 10*time.Second {
			t.Fatalf("got %q after %v, want late after 10s", k, time.Since(start))
		}
		q.Done(k)
		// An earlier AddAfter replaces a later pending one.
		q.AddAfter("x", time.Minute)
		q.AddAfter("x", time.Second)
		start = time.Now()
		k, _ = q.Get()
		if k != "x" || time.Since(start) != time.Second {
			t.Fatalf("got %q after %v, want x after 1s", k, time.Since(start))
		}
		q.Done(k)
		time.Sleep(2 * time.Minute)
		if q.Len() != 0 {
			t.Fatal("superseded delayed add fired")
		}
	})
}

func TestBackoff(t *testing.T) {
	q := New(100*time.Millisecond, 2*time.Second)
	defer q.ShutDown()
	within := func(d, want time.Duration) bool {
		return d >= want*8/10 && d <= want*12/10
	}
	for n, want := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000} {
		want *= time.Millisecond
		if n >= 5 {
			want = 2 * time.Second
		}
		if d := q.backoff(n); !within(d, want) {
			t.Errorf("backoff(%d) = %v, want %v ±20%%", n, d, want)
		}
	}
	// The cap holds after the jitter: a failing key is retried at least
	// once per MaxDelay.
	for n := 5; n < 200; n++ {
		if d := q.backoff(n); d > 2*time.Second {
			t.Fatalf("backoff(%d) = %v, above MaxDelay 2s", n, d)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		q := New(time.Second, time.Minute)
		defer q.ShutDown()
		q.AddRateLimited("k")
		q.AddRateLimited("k")
		if q.Failures("k") != 2 {
			t.Fatalf("failures = %d", q.Failures("k"))
		}
		start := time.Now()
		k, _ := q.Get()
		if el := time.Since(start); k != "k" || el < 800*time.Millisecond || el > 1200*time.Millisecond {
			t.Fatalf("first retry after %v, want about 1s (earliest pending add)", el)
		}
		q.Done(k)
		q.Forget("k")
		if q.Failures("k") != 0 {
			t.Fatal("Forget did not reset failures")
		}
	})
}

func TestShutDownUnblocksGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(time.Second, time.Minute)
		done := make(chan bool)
		go func() {
			_, ok := q.Get()
			done <- ok
		}()
		synctest.Wait()
		q.ShutDown()
		if ok := <-done; ok {
			t.Fatal("Get returned a key after shutdown")
		}
		q.Add("x")
		if q.Len() != 0 {
			t.Fatal("add after shutdown accepted")
		}
	})
}
