package manifests

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"bakery.dev/bakery/api"
)

// Load reads a bundle from path: "-" reads stdin; a directory is walked
// recursively for *.yaml, *.yml and *.json files, read in sorted path
// order, skipping hidden files and directories (names starting with ".");
// any other file is read as is, whatever its name. All the files of a
// directory form one bundle: an object defined in two files is an error.
//
// Errors are Errors whose Source is the file path ("-" for stdin); I/O
// errors are kept as their Err, so errors.Is(err, fs.ErrNotExist) works.
// Each file, and stdin, may hold at most MaxBytes.
func Load(path string, stdin io.Reader) ([]api.Object, error) {
	d := newDecoder()
	if path == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		if data, e := readLimited(stdin, "-"); e != nil {
			d.errs.add(e)
		} else {
			d.decode("-", data)
		}
		return d.result()
	}
	info, err := os.Stat(path)
	if err != nil {
		d.errs.add(&Error{Source: path, Reason: ioReason(err), Err: err})
		return d.result()
	}
	files := []string{path}
	if info.IsDir() {
		files, err = manifestFiles(path)
		if err != nil {
			d.errs.add(&Error{Source: path, Reason: ioReason(err), Err: err})
			return d.result()
		}
	}
	for _, f := range files {
		if d.stop() {
			break
		}
		data, e := readFile(f)
		if e != nil {
			d.errs.add(e)
			continue
		}
		d.decode(f, data)
	}
	return d.result()
}

// manifestFiles returns the manifest files under dir, sorted.
func manifestFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		if e.Type()&fs.ModeSymlink != 0 {
			// Follow links to files; links to directories could loop.
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		} else if !e.Type().IsRegular() {
			return nil
		}
		files = append(files, p)
		return nil
	})
	sort.Strings(files)
	return files, err
}

func readFile(name string) ([]byte, *Error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, &Error{Source: name, Reason: ioReason(err), Err: err}
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxBytes {
		return nil, tooLarge(name)
	}
	return readLimited(f, name)
}

// readLimited reads r up to MaxBytes, refusing more without reading it.
func readLimited(r io.Reader, source string) ([]byte, *Error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, &Error{Source: source, Reason: "read: " + ioReason(err), Err: err}
	}
	if len(data) > MaxBytes {
		return nil, tooLarge(source)
	}
	return data, nil
}

// ioReason is err without the path a *fs.PathError repeats (the path is
// the Error's Source).
func ioReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
