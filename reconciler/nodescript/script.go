package nodescript

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

//go:embed *.sh
var files embed.FS

// Variables every script gets, besides its own inputs.
const (
	// EnvScript carries the script's Name. It tells a simulated node (and
	// a reader of the framed command) which script this is.
	EnvScript = "BAKERY_SCRIPT"
	// EnvRoot is Bakery's directory on the node, [nodefiles.Root]: the
	// scripts derive every path under it from this variable.
	EnvRoot = "BAKERY_ROOT"
	// EnvSudo is the node's bakery-sudo helper, [nodefiles.SudoHelper].
	EnvSudo = "BAKERY_SUDO"
)

// ErrInvalid is returned by Command for an input that cannot be sent (an
// app name that is no single path element, a short commit id, a NUL
// byte, …). It wraps [sshexec.ErrInvalidCommand], so [sshexec.IsTerminal]
// holds for it: retrying cannot fix it.
var ErrInvalid = fmt.Errorf("nodescript: invalid input: %w", sshexec.ErrInvalidCommand)

// Script is one node-side shell script, the embedded file <Name>.sh,
// whose inputs are an In.
type Script[In any] struct {
	// Name is the script's name (its file name without .sh), sent to the
	// node as BAKERY_SCRIPT.
	Name string
	text string
	fill func(In, *call)
}

// Text returns the script as it runs on the node.
func (s Script[In]) Text() string { return s.text }

// Command returns the command that runs the script with in: the inputs
// become environment variables (and, for some, the script's stdin),
// which sshexec sends over the session's stdin, never on a command line.
// The caller adds Timeout, Sink and CaptureLimit.
func (s Script[In]) Command(in In) (sshexec.Command, error) {
	c := &call{env: map[string]string{}}
	s.fill(in, c)
	if c.err != nil {
		return sshexec.Command{}, fmt.Errorf("%s: %w", s.Name, c.err)
	}
	c.env[EnvScript] = s.Name
	c.env[EnvRoot] = nf.Root
	c.env[EnvSudo] = nf.SudoHelper
	for k, v := range c.env {
		if strings.IndexByte(v, 0) >= 0 {
			return sshexec.Command{}, fmt.Errorf("%s: %w: %s contains a NUL byte", s.Name, ErrInvalid, k)
		}
	}
	cmd := sshexec.Command{Script: s.text, Env: c.env}
	if c.hasStdin {
		cmd.Stdin = strings.NewReader(c.stdin)
	}
	return cmd, nil
}

// names lists every defined script (a test checks it against the files).
var names = map[string]bool{}

// define returns the script of the embedded file name.sh; fill turns an
// In into the script's environment.
func define[In any](name string, fill func(In, *call)) Script[In] {
	b, err := files.ReadFile(name + ".sh")
	if err != nil {
		panic("nodescript: " + err.Error())
	}
	if names[name] {
		panic("nodescript: script " + name + " defined twice")
	}
	names[name] = true
	return Script[In]{Name: name, text: string(b), fill: fill}
}

// Names returns the names of all scripts, sorted.
func Names() []string {
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// call collects one script's environment and stdin while checking them.
type call struct {
	env      map[string]string
	stdin    string
	hasStdin bool
	err      error
}

func (c *call) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
}

func (c *call) set(name, value string) { c.env[name] = value }

func (c *call) setInt(name string, v int64) { c.env[name] = strconv.FormatInt(v, 10) }

// elem sets a value the script uses as one element of a path.
func (c *call) elem(name, what, v string) {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\x00") {
		c.fail("%s %q is not a single path element", what, v)
	}
	c.set(name, v)
}

// app sets APP.
func (c *call) app(app string) { c.elem("APP", "app name", app) }

// slot sets SLOT (blue or green).
func (c *call) slot(slot string) {
	if slot != nf.Blue && slot != nf.Green {
		c.fail("slot %q is neither %s nor %s", slot, nf.Blue, nf.Green)
	}
	c.set("SLOT", slot)
}

// commit sets COMMIT, a full commit id.
func (c *call) commit(commit string) {
	if !api.IsCommitID(commit) {
		c.fail("commit %q is not a full commit id (40 lower-case hex digits)", commit)
	}
	c.set("COMMIT", commit)
}

// absPath sets a value the script uses as an absolute path.
func (c *call) absPath(name, p string) {
	if !path.IsAbs(p) {
		c.fail("%s path %q is not absolute", strings.ToLower(name), p)
	}
	c.set(name, p)
}

// input makes s the script's stdin (else it reads /dev/null).
func (c *call) input(s string) { c.stdin, c.hasStdin = s, true }
