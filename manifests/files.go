package manifests

import (
	"path"
	"sort"
	"strings"

	"bakery.dev/bakery/api"
)

// File is one manifest file of a bundle read from somewhere other than the
// local file system (a git tree).
type File struct {
	// Name is the file's path, used in errors.
	Name string
	Data []byte
}

// IsManifestName reports whether Load would read a file of that path when
// walking a directory: a *.yaml, *.yml or *.json file with no hidden
// element (starting with ".") in its path.
func IsManifestName(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if strings.HasPrefix(e, ".") && e != "." {
			return false
		}
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// DecodeFiles decodes the files as one bundle, in sorted name order, as
// Load decodes a directory: strictly, an object defined twice being an
// error naming both places. It does not default or validate (see Check).
func DecodeFiles(files []File) ([]api.Object, error) {
	fs := append([]File(nil), files...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	d := newDecoder()
	for _, f := range fs {
		if d.stop() {
			break
		}
		d.decode(f.Name, f.Data)
	}
	return d.result()
}
