package nodescript

import (
	"regexp"

	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// Archive formats of a shipped release (PackInput.Format).
const (
	FormatGzip = "gzip"
	FormatZstd = "zstd"
)

// Exit statuses of pack and unpack the control plane tells apart.
const (
	// ExitNotShippable: pack found links out of the release (or special
	// files); the other nodes build the release themselves.
	ExitNotShippable = 75
	// ExitHashMismatch: unpack refused an archive whose SHA-256 is not
	// the one packed (nothing was unpacked).
	ExitHashMismatch = 65
	// ExitRefused: unpack refused the archive's content (names out of the
	// release, links out of it, special files, set-id bits).
	ExitRefused = 66
)

// PackInput is the input of pack.
type PackInput struct {
	App     string
	Release string // the release's directory name (nodefiles.ReleaseID)
	// Runtime is the spec's runtime: docker packs the release's image.
	Runtime string
	// Format compresses a systemd release: FormatGzip or FormatZstd
	// (docker images are always gzip).
	Format string
	// BuildHash must be the release's built marker.
	BuildHash string
}

// Pack writes the built release to stdout as one compressed archive
// (run it with sshexec.Command.Stdout set): the release directory as a
// tar archive, or under docker the release's image (docker save). A
// release with links out of itself exits ExitNotShippable.
var Pack = define("pack", func(in PackInput, c *call) {
	c.app(in.App)
	c.elem("RELEASE", "release", in.Release)
	c.set("RUNTIME", in.Runtime)
	c.set("IMAGE", nf.ImageRef(in.App, in.Release))
	c.format(in.Format)
	c.set("BUILD_HASH", in.BuildHash)
})

// UnpackInput is the input of unpack.
type UnpackInput struct {
	App     string
	Release string
	Runtime string
	Format  string
	// Archive is the absolute path the archive was uploaded to; unpack
	// removes it.
	Archive string
	// SHA256 is the archive's hex SHA-256, as the control plane read it
	// from the builder.
	SHA256    string
	BuildHash string
}

var sha256HexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Unpack checks the uploaded archive's SHA-256 (ExitHashMismatch when it
// differs: nothing is unpacked), checks its content (ExitRefused) and
// makes the release from it, with its built marker; under docker it loads
// the image. It runs as bakery-agent; the archive is removed either way.
var Unpack = define("unpack", func(in UnpackInput, c *call) {
	c.app(in.App)
	c.elem("RELEASE", "release", in.Release)
	c.set("RUNTIME", in.Runtime)
	c.set("IMAGE", nf.ImageRef(in.App, in.Release))
	c.format(in.Format)
	c.absPath("ARCHIVE", in.Archive)
	if !sha256HexRE.MatchString(in.SHA256) {
		c.fail("sha256 %q is not 64 lower-case hex digits", in.SHA256)
	}
	c.set("SHA256", in.SHA256)
	c.set("BUILD_HASH", in.BuildHash)
})

// format sets FORMAT.
func (c *call) format(f string) {
	if f != FormatGzip && f != FormatZstd {
		c.fail("archive format %q is neither %s nor %s", f, FormatGzip, FormatZstd)
	}
	c.set("FORMAT", f)
}
