// Package browsertest drives the web UI in a real headless Chromium
// (Debian's chromium package) through the DevTools protocol (chromedp),
// for tests only: the browser starts isolated (fresh profile, no network
// services of its own), and helpers check that a page fits its viewport
// and save screenshots under test-artifacts/.
//
// It is not a general browser library; production code never imports it.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Widths every page is checked at: a phone and a desktop.
var Widths = []int64{390, 1366}

// Browser is one headless Chromium with one tab.
type Browser struct {
	t   *testing.T
	Ctx context.Context

	mu       sync.Mutex
	problems []string // uncaught exceptions, CSP violations
}

// chromium returns the browser binary, or "" when there is none.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start starts Chromium for t, and stops it at the end of t. Without a
// Chromium the test is skipped, except under CI=true, where it fails
// (scripts/install-test-deps.sh installs it).
func Start(t *testing.T) *Browser {
	t.Helper()
	bin := chromium()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (scripts/install-test-deps.sh installs it)")
		}
		t.Skip("chromium is not installed; run scripts/install-test-deps.sh")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1366, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	b := &Browser{t: t, Ctx: ctx}
	t.Cleanup(func() {
		cancelC()
		cancelA()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.note("exception: " + (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, a.Description+string(a.Value))
				}
				b.note("console.error: " + strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				b.note("log: " + e.Entry.Text)
			}
		case *page.EventJavascriptDialogOpening:
			// Confirmations are accepted, as a user would. The listener
			// must not send commands itself.
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	if err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the log domain: %v", err)
	}
	return b
}

func (b *Browser) note(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

// Problems returns the uncaught exceptions and console errors (a CSP
// violation is one) seen so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// Do runs steps with a bound of d, failing the test on error.
func (b *Browser) Do(d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.where())
	}
}

// where describes the current page for a failure message.
func (b *Browser) where() string {
	ctx, cancel := context.WithTimeout(b.Ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	if len(html) > 4000 {
		html = html[:4000] + "…"
	}
	return "at " + loc + "\n" + html + "\nbrowser problems: " + strings.Join(b.Problems(), "; ")
}

// Eval evaluates a JavaScript expression.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v\n%s", expr, err, b.where())
	}
	return v
}

// WaitJS waits until the JavaScript expression is true, checking every
// 100 ms for at most d. A page that is navigating meanwhile (a form's
// redirect) is waited out, not an error.
func (b *Browser) WaitJS(d time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("%s: %s not true within %s (last error: %v)\n%s", what, expr, d, last, b.where())
}

// ArtifactDir is where screenshots go: $BAKERY_TEST_ARTIFACTS, else
// test-artifacts/ui at the module root (git-ignored).
func ArtifactDir(t *testing.T) string {
	dir := os.Getenv("BAKERY_TEST_ARTIFACTS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "test-artifacts")
	}
	dir = filepath.Join(dir, "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// CheckWidths loads url at every width in Widths, asserts that the page
// does not scroll sideways (document.documentElement.scrollWidth <=
// window.innerWidth) and saves a full-page screenshot as
// <name>-<width>.png in ArtifactDir. ready is a CSS selector that must be
// visible before the check.
func (b *Browser) CheckWidths(url, name, ready string) {
	b.t.Helper()
	for _, w := range Widths {
		b.Do(30*time.Second, fmt.Sprintf("%s at %dpx", name, w),
			chromedp.EmulateViewport(w, 900),
			chromedp.Navigate(url),
			chromedp.WaitVisible(chromedp.CSS(ready)),
		)
		scrollW := Eval[int64](b, `document.documentElement.scrollWidth`)
		innerW := Eval[int64](b, `window.innerWidth`)
		b.shot(fmt.Sprintf("%s-%d", name, w))
		if innerW != w || scrollW > innerW {
			b.t.Errorf("%s at %dpx: scrollWidth %d > innerWidth %d (the page scrolls sideways)", name, w, scrollW, innerW)
		}
	}
}

// Screenshot saves a screenshot of the whole page as name.png in
// ArtifactDir.
func (b *Browser) Screenshot(name string) { b.t.Helper(); b.shot(name) }

func (b *Browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 20*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(ArtifactDir(b.t), name+".png"), img, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
