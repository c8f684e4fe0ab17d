package filestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/manifests"
)

const (
	stateDir    = ".state"
	specExt     = ".yaml"
	stateExt    = ".json"
	journalFile = ".journal"
	rvFile      = ".rv"
	lockFile    = ".lock"
	tokensFile  = "tokens.json"
	tmpMarker   = ".tmp-"

	dirPerm   = 0o700
	specPerm  = 0o644
	statePerm = 0o600
)

// specFile is what a user-owned spec file holds when the store writes it.
type specFile struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   specMeta        `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
}

type specMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// stateFile is what the store keeps beside a spec file.
type stateFile struct {
	UID               string    `json:"uid"`
	Generation        int64     `json:"generation"`
	ResourceVersion   string    `json:"resourceVersion"`
	CreationTimestamp *api.Time `json:"creationTimestamp"`
	// SpecHash is the hash of the canonical JSON of the last accepted spec:
	// a spec file whose spec hashes differently was edited by hand.
	SpecHash string `json:"specHash"`
	// FileHash is the hash of the spec file's bytes as last written or
	// accepted by the store: a file that hashes the same is unchanged.
	FileHash string          `json:"fileHash"`
	Status   json.RawMessage `json:"status,omitempty"`
}

func hashBytes(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func hashSpec(o api.Object) string { return hashBytes(o.SpecJSON()) }

func encodeSpec(o api.Object) ([]byte, error) {
	m := o.GetObjectMeta()
	return yaml.Marshal(specFile{
		APIVersion: api.APIVersion,
		Kind:       o.GetTypeMeta().Kind,
		Metadata:   specMeta{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations},
		Spec:       o.SpecJSON(),
	})
}

func encodeState(e *entry) ([]byte, error) {
	m := e.obj.GetObjectMeta()
	return json.MarshalIndent(stateFile{
		UID:               m.UID,
		Generation:        m.Generation,
		ResourceVersion:   m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp,
		SpecHash:          e.specHash,
		FileHash:          e.fileHash,
		Status:            e.obj.StatusJSON(),
	}, "", "  ")
}

// readState reads a state file; it returns nil, nil when there is none.
func readState(path string) (*stateFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, err
	}
	switch {
	case st.UID == "":
		return nil, errors.New("uid is missing")
	case st.Generation < 1:
		return nil, fmt.Errorf("generation %d is not positive", st.Generation)
	case st.CreationTimestamp == nil:
		return nil, errors.New("creationTimestamp is missing")
	}
	if _, err := parseRV(st.ResourceVersion); err != nil {
		return nil, err
	}
	return &st, nil
}

// decodeSpec decodes a spec file strictly with package manifests: unknown
// fields, duplicate keys, wrong types and anything but exactly one object
// are errors, and the kind and name must match the file's place.
// Store-owned fields (uid, generation, resourceVersion, creationTimestamp,
// status) are cleared: the store's values win.
func decodeSpec(kind, name string, data []byte) (api.Object, error) {
	objs, err := manifests.DecodeSource("", data)
	if err != nil {
		return nil, oneLine(err)
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("the file holds %d objects; a spec file holds exactly one", len(objs))
	}
	o := objs[0]
	if k := o.GetTypeMeta().Kind; k != kind {
		return nil, fmt.Errorf("kind is %q, but files in %s/ must be %q", k, api.Resource(kind), kind)
	}
	m := o.GetObjectMeta()
	if m.Name != name {
		return nil, fmt.Errorf("metadata.name is %q, but the file is named %s%s", m.Name, name, specExt)
	}
	*m = api.ObjectMeta{Name: m.Name, Labels: nonEmpty(m.Labels), Annotations: nonEmpty(m.Annotations)}
	if err := o.SetStatusJSON(json.RawMessage("{}")); err != nil {
		return nil, err
	}
	return o, nil
}

// decodeHandEdited decodes a spec file written by someone other than the
// store: strictly, then defaulted and validated.
func decodeHandEdited(kind, name string, data []byte) (api.Object, error) {
	o, err := decodeSpec(kind, name, data)
	if err != nil {
		return nil, err
	}
	if err := manifests.Check([]api.Object{o}); err != nil {
		return nil, oneLine(err)
	}
	return o, nil
}

// oneLine joins the lines of a multi-line error (manifests.Errors).
func oneLine(err error) error {
	if msg := err.Error(); strings.Contains(msg, "\n") {
		return fmt.Errorf("%s", strings.ReplaceAll(msg, "\n", "; "))
	}
	return err
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// isSpecFile reports whether base is the name of a spec file (as opposed to
// an editor's backup, swap or test file, or a temporary file of the store).
func isSpecFile(base string) bool {
	return !strings.HasPrefix(base, ".") && strings.HasSuffix(base, specExt) && len(base) > len(specExt)
}

// writeTemp writes data to a new temporary file beside path and syncs it.
func writeTemp(path string, data []byte, perm fs.FileMode) (string, error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+tmpMarker+"*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// writeAtomic replaces path with data: temp file, fsync, rename, fsync dir.
func writeAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeFile removes path; a missing file is not an error.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// pendingWrite is one file of a commit. Its content is produced by
// encode, in a worker, so that encoding runs in parallel too.
type pendingWrite struct {
	path   string
	perm   fs.FileMode
	encode func() ([]byte, error)
	tmp    string
}

// writeTemps encodes and writes every temporary file of a commit, several
// groups at a time (concurrent fsyncs share the filesystem's journal
// commits); the files of one group are written in order. On error every
// temporary file is removed.
func writeTemps(groups [][]*pendingWrite) error {
	const workers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan []*pendingWrite)
	)
	for range min(workers, len(groups)) {
		wg.Go(func() {
			for g := range next {
				for _, w := range g {
					data, err := w.encode()
					if err == nil {
						w.tmp, err = writeTemp(w.path, data, w.perm)
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("write %s: %w", w.path, err))
						mu.Unlock()
						break
					}
				}
			}
		})
	}
	for _, g := range groups {
		next <- g
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, g := range groups {
			for _, w := range g {
				if w.tmp != "" {
					os.Remove(w.tmp)
				}
			}
		}
		return err
	}
	return nil
}

// fileOp is one step of applying a commit: rename From to To, or (From
// empty) remove To. Paths in a journal are relative to the data directory.
type fileOp struct {
	From string `json:"from,omitempty"`
	To   string `json:"to"`
}

type journal struct {
	Ops []fileOp `json:"ops"`
}

// applyOps performs ops in order (idempotently, so that a journal can be
// replayed) and syncs the directories they touched.
func applyOps(root string, ops []fileOp) error {
	dirs := map[string]bool{}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	for _, op := range ops {
		to := abs(op.To)
		dirs[filepath.Dir(to)] = true
		if op.From == "" {
			if err := removeFile(to); err != nil {
				return err
			}
			continue
		}
		if err := os.Rename(abs(op.From), to); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // already renamed before a crash
			}
			return err
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// writeJournal durably records ops (relative to root) before they are
// applied.
func writeJournal(root string, ops []fileOp) error {
	rel := make([]fileOp, len(ops))
	for i, op := range ops {
		var err error
		if op.From != "" {
			if rel[i].From, err = filepath.Rel(root, op.From); err != nil {
				return err
			}
		}
		if rel[i].To, err = filepath.Rel(root, op.To); err != nil {
			return err
		}
	}
	data, err := json.Marshal(journal{Ops: rel})
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(root, journalFile), data, statePerm)
}

// replayJournal rolls forward a commit interrupted by a crash.
func replayJournal(root string) (bool, error) {
	path := filepath.Join(root, journalFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	for _, op := range j.Ops {
		if !filepath.IsLocal(op.To) || (op.From != "" && !filepath.IsLocal(op.From)) {
			return false, fmt.Errorf("%s: path outside the data directory", path)
		}
	}
	if err := applyOps(root, j.Ops); err != nil {
		return false, err
	}
	if err := os.Remove(path); err != nil {
		return false, err
	}
	return true, syncDir(root)
}

// removeTemps removes temporary files left by a crash in dir.
func removeTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, tmpMarker) && e.Type().IsRegular() {
			if err := removeFile(filepath.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}
