package server_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/storetest"
)

func TestEvents(t *testing.T) {
	e := newEnv(t)
	var web []*api.Event
	for i, id := range []string{"a", "b", "c"} {
		ev := storetest.Event(id, "Deployment/hello", i)
		if err := e.st.AddEvent(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		web = append([]*api.Event{ev}, web...)
	}
	node := storetest.Event("n", "Node/web-1", 10)
	if err := e.st.AddEvent(t.Context(), node); err != nil {
		t.Fatal(err)
	}

	list := func(query string) []*api.Event {
		t.Helper()
		r := e.req("GET", "/api/v1/events"+query, "", "")
		want(t, r, 200)
		var l api.EventList
		r.decode(t, &l)
		if l.Items == nil {
			t.Fatalf("items is null: %s", r.body)
		}
		return l.Items
	}
	if diff := cmp.Diff(web, list("?object=Deployment/hello")); diff != "" {
		t.Fatalf("events of Deployment/hello (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(web[:2], list("?object=Deployment/hello&limit=2")); diff != "" {
		t.Fatalf("limit 2 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append([]*api.Event{node}, web...), list("")); diff != "" {
		t.Fatalf("all events (-want +got):\n%s", diff)
	}
	// An object without events (it need not exist).
	if got := list("?object=Node/gone"); len(got) != 0 {
		t.Fatalf("events of Node/gone: %v", got)
	}

	for _, q := range []string{"?object=hello", "?object=deployment/hello", "?object=Pod/x",
		"?object=Deployment/Bad_Name", "?object=Deployment/a/b", "?limit=x", "?limit=-1"} {
		r := e.req("GET", "/api/v1/events"+q, "", "")
		want(t, r, 400)
		field := "object"
		if q[1] == 'l' {
			field = "limit"
		}
		wantDetail(t, r.err(t), field, "")
	}
}

func TestEventsStoreWithout(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.Store = struct{ store.Store }{c.Store} })
	r := e.req("GET", "/api/v1/events?object=Deployment/hello", "", "")
	want(t, r, 503)
	r.err(t)
}
