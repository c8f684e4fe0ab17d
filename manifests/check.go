package manifests

import (
	"bakery.dev/bakery/api"
)

// Check defaults and validates each object (obj.Default(), then
// obj.Validate()) and returns every problem as Errors, each with the
// object's position in objs (1-based) as Index, its kind and name, and the
// field path. It returns nil when every object is valid. The objects are
// defaulted in place.
func Check(objs []api.Object) error {
	var l errList
	for i, o := range objs {
		if o == nil {
			l.add(&Error{Index: i + 1, Reason: "nil object"})
			continue
		}
		o.Default()
		kind, name := o.GetTypeMeta().Kind, o.GetObjectMeta().Name
		for _, fe := range o.Validate() {
			l.add(&Error{Index: i + 1, Kind: kind, Name: name, Field: fe.Field, Reason: fe.Reason})
		}
	}
	return l.err()
}
