package pgstore

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// row is one stored object: metadata in columns, spec and status as JSON.
type row struct {
	kind, name, uid string
	generation, rv  int64
	labels, annots  map[string]string
	spec, status    []byte
	created         time.Time
}

const rowColumns = `kind, name, uid, generation, resource_version, labels, annotations, spec, status, created_at`

func scanRow(rows pgx.CollectableRow) (*row, error) {
	var r row
	err := rows.Scan(&r.kind, &r.name, &r.uid, &r.generation, &r.rv, &r.labels, &r.annots, &r.spec, &r.status, &r.created)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *row) meta() api.ObjectMeta {
	return api.ObjectMeta{
		Name:              r.name,
		Labels:            copyMap(r.labels),
		Annotations:       copyMap(r.annots),
		UID:               r.uid,
		Generation:        r.generation,
		ResourceVersion:   strconv.FormatInt(r.rv, 10),
		CreationTimestamp: api.NewTime(r.created),
	}
}

// object decodes the row into a new object the caller owns.
func (r *row) object() (api.Object, error) {
	o, err := api.Assemble(r.kind, r.meta(), r.spec, r.status)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrCorrupt, err)
	}
	return o, nil
}

// eventJSON is the whole object as JSON, the form kept in events.object.
func (r *row) eventJSON() ([]byte, error) {
	m, err := json.Marshal(r.meta())
	if err != nil {
		return nil, err
	}
	k, _ := json.Marshal(r.kind)
	b := make([]byte, 0, 64+len(m)+len(r.spec)+len(r.status))
	b = append(b, `{"apiVersion":"`+api.APIVersion+`","kind":`...)
	b = append(b, k...)
	b = append(b, `,"metadata":`...)
	b = append(b, m...)
	b = append(b, `,"spec":`...)
	b = append(b, r.spec...)
	b = append(b, `,"status":`...)
	b = append(b, r.status...)
	b = append(b, '}')
	return b, nil
}

// copyMap copies m; empty maps become nil, the form objects are returned in.
func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// mapJSON encodes labels or annotations for a JSONB column.
func mapJSON(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // a map of strings always encodes
	}
	return string(b)
}

// newUID returns a random (version 4) UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
