package server_test

import (
	"net/http"
	"testing"

	"bakery.dev/bakery/api"
)

// TestDeletePurgeData: DELETE asks for the deletion only; with
// ?purgeData=true it also marks the deployment's persistent data for
// removal, also when the deletion was already asked for.
func TestDeletePurgeData(t *testing.T) {
	mod, _ := withManager(t)
	e := newEnv(t, mod)
	ann := func() map[string]string {
		t.Helper()
		o, err := e.st.Get(t.Context(), api.KindDeployment, "web")
		if err != nil {
			t.Fatal(err)
		}
		return o.GetObjectMeta().Annotations
	}
	want(t, e.req("POST", "/api/v1/apply", "application/yaml", deployYAML), http.StatusOK)
	want(t, e.req("DELETE", "/api/v1/deployments/web", "", ""), http.StatusAccepted)
	if a := ann(); a[api.AnnotationDeletionRequested] == "" || a[api.AnnotationPurgeData] != "" {
		t.Fatalf("after a plain delete: annotations %v", a)
	}
	want(t, e.req("DELETE", "/api/v1/deployments/web?purgeData=true", "", ""), http.StatusAccepted)
	if a := ann(); a[api.AnnotationPurgeData] != "true" {
		t.Fatalf("after delete with purgeData: annotations %v", a)
	}
}
