package manifestsync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/manifests"
)

// DefaultDebounce is how long a watched directory must stay quiet before
// its manifests are applied.
const DefaultDebounce = 500 * time.Millisecond

// DirOwner is the owner annotation value of objects a watched directory
// created.
func DirOwner(dir string) string { return "Directory:" + dir }

// Watcher keeps the manifests of a local directory applied: on start and
// whenever files under it change, it waits until the directory has been
// quiet for Debounce, then loads every manifest (manifests.Load: *.yaml,
// *.yml, *.json; hidden files such as editor swap files are skipped, and
// so are backups like "app.yaml~" and temp files like "app.yaml.tmp"),
// checks them and syncs them as one unit owned by DirOwner(Dir). A file
// caught half-written does not decode or validate: nothing is applied,
// and the write that completes it triggers the next attempt. Editors that
// save by writing a temp file and renaming it over the original produce
// only create/rename events on the directory, which are watched too.
type Watcher struct {
	// Dir is the directory (made absolute by Run).
	Dir   string
	Store store.Store
	// DeleteViaLoop: see Options.DeleteViaLoop.
	DeleteViaLoop bool
	// AllowLocalNodes lets the directory hold Nodes with spec.local (the
	// server's --allow-local-nodes); without it such a bundle applies
	// nothing.
	AllowLocalNodes bool
	Debounce        time.Duration
	Logger          *slog.Logger
	// Synced, if set, is called after every attempt (tests, status).
	Synced func(Result, error)

	mu   sync.Mutex
	last WatchStatus
}

// WatchStatus is the outcome of the watcher's last attempt.
type WatchStatus struct {
	Time   time.Time
	Result Result
	Err    error
}

// Status returns the outcome of the last attempt.
func (w *Watcher) Status() WatchStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *Watcher) log() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}

// Run watches until ctx ends. It fails at once if Dir cannot be watched.
func (w *Watcher) Run(ctx context.Context) error {
	dir, err := filepath.Abs(w.Dir)
	if err != nil {
		return err
	}
	w.Dir = dir
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("manifests directory: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("manifests directory: %s is not a directory", dir)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("manifests directory: %w", err)
	}
	defer fsw.Close()
	if err := addTree(fsw, dir); err != nil {
		return fmt.Errorf("manifests directory: watch %s: %w", dir, err)
	}
	debounce := w.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w.sync(ctx)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fsw.Events:
			if !ok {
				return errors.New("manifests directory: watcher closed")
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() && !hidden(ev.Name) {
					// A new subdirectory: watch it too (and read what it
					// already holds on the next sync).
					if err := addTree(fsw, ev.Name); err != nil {
						w.log().Warn("manifests directory: watching a new subdirectory", "dir", ev.Name, "err", err)
					}
				}
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-fsw.Errors:
			if !ok {
				return errors.New("manifests directory: watcher closed")
			}
			// Events may have been lost (queue overflow): read it all again.
			w.log().Warn("manifests directory: watch error; syncing again", "err", err)
			timer.Reset(debounce)
		case <-timer.C:
			w.sync(ctx)
		}
	}
}

func hidden(p string) bool { return strings.HasPrefix(filepath.Base(p), ".") }

// addTree watches dir and its subdirectories that are not hidden.
func addTree(fsw *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.IsDir() {
			return nil
		}
		if p != dir && hidden(p) {
			return filepath.SkipDir
		}
		return fsw.Add(p)
	})
}

// sync loads, checks and applies the directory once.
func (w *Watcher) sync(ctx context.Context) {
	res, err := w.SyncOnce(ctx)
	w.mu.Lock()
	w.last = WatchStatus{Time: time.Now(), Result: res, Err: err}
	w.mu.Unlock()
	if err != nil {
		w.log().Error("manifests directory: nothing applied", "dir", w.Dir, "err", err)
	} else if !res.Empty() {
		w.log().Info("manifests directory synced", "dir", w.Dir, "created", res.Created, "changed", res.Changed, "pruned", res.Pruned)
	}
	if w.Synced != nil {
		w.Synced(res, err)
	}
}

// SyncOnce loads, checks and applies the directory's manifests once.
func (w *Watcher) SyncOnce(ctx context.Context) (Result, error) {
	objs, err := manifests.Load(w.Dir, nil)
	if err == nil {
		err = manifests.Check(objs)
	}
	if err != nil {
		return Result{}, err
	}
	return Sync(ctx, w.Store, objs, Options{Owner: DirOwner(w.Dir), Prune: true, DeleteViaLoop: w.DeleteViaLoop,
		Policy: manifests.Policy{LocalNodes: w.AllowLocalNodes}})
}
