package nodescript

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"bakery.dev/bakery/sshexec"
)

// packRelease packs the release rel of app web under root and returns
// the archive (or the error and stderr).
func packRelease(t *testing.T, root, rel, format string) ([]byte, string, error) {
	t.Helper()
	cmd, err := Pack.Command(PackInput{App: "web", Release: rel, Runtime: "systemd", Format: format, BuildHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	res, err := runLocal(t, cmd, root)
	return out.Bytes(), string(res.Stderr), err
}

// unpackArchive uploads data as the archive of release rel under root and
// unpacks it, checked against sum.
func unpackArchive(t *testing.T, root, rel, format string, data []byte, sum string) (string, error) {
	t.Helper()
	p := filepath.Join(root, "apps", "web", ".incoming-"+rel)
	writeFile(t, p, string(data))
	cmd, err := Unpack.Command(UnpackInput{App: "web", Release: rel, Runtime: "systemd", Format: format, Archive: p, SHA256: sum, BuildHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := runLocal(t, cmd, root)
	if _, serr := os.Stat(p); serr == nil {
		t.Errorf("the archive %s is still there", p)
	}
	return string(res.Stderr), err
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func exitCode(err error) int {
	var ee *sshexec.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

// TestPackUnpackLocal: a built release travels as an archive and arrives
// byte for byte (modes, links inside it, an empty directory); an archive
// whose hash differs is refused and nothing is unpacked.
func TestPackUnpackLocal(t *testing.T) {
	formats := []string{FormatGzip}
	if _, err := exec.LookPath("zstd"); err == nil {
		formats = append(formats, FormatZstd)
	}
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			rel := strings.Repeat("a", 40) + "-0123456789abcdef"
			d := filepath.Join(src, "apps", "web", "releases", rel)
			writeFile(t, filepath.Join(d, "server.js"), "console.log(1)\n")
			writeFile(t, filepath.Join(d, "bin", "run"), "#!/bin/sh\n")
			os.Chmod(filepath.Join(d, "bin", "run"), 0o755)
			writeFile(t, filepath.Join(d, "dist", "secret"), "x")
			os.Chmod(filepath.Join(d, "dist", "secret"), 0o600)
			os.MkdirAll(filepath.Join(d, "empty"), 0o755)
			os.Symlink("../server.js", filepath.Join(d, "bin", "server"))
			os.Link(filepath.Join(d, "server.js"), filepath.Join(d, "hard.js"))
			writeFile(t, filepath.Join(d, ".bakery-built"), "h")

			data, stderr, err := packRelease(t, src, rel, format)
			if err != nil {
				t.Fatalf("pack: %v: %s", err, stderr)
			}
			sum := sumOf(data)

			// One flipped byte: refused by its hash, nothing unpacked.
			bad := bytes.Clone(data)
			bad[len(bad)/2] ^= 0xff
			stderr, err = unpackArchive(t, dst, rel, format, bad, sum)
			if exitCode(err) != ExitHashMismatch || !strings.Contains(stderr, "SHA-256") {
				t.Fatalf("a corrupted archive: %v, %s", err, stderr)
			}
			if _, err := os.Stat(filepath.Join(dst, "apps", "web", "releases", rel)); !os.IsNotExist(err) {
				t.Fatalf("a corrupted archive left a release: %v", err)
			}

			if stderr, err := unpackArchive(t, dst, rel, format, data, sum); err != nil {
				t.Fatalf("unpack: %v: %s", err, stderr)
			}
			got := filepath.Join(dst, "apps", "web", "releases", rel)
			for _, f := range []string{"server.js", "bin/run", "dist/secret", "bin/server", "hard.js", "empty", ".bakery-built"} {
				a, err1 := os.Lstat(filepath.Join(d, f))
				b, err2 := os.Lstat(filepath.Join(got, f))
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: %v %v", f, err1, err2)
				}
				if a.Mode() != b.Mode() || (a.Mode().IsRegular() && f != ".bakery-built" && (a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()))) {
					t.Errorf("%s: %v %d %v, shipped %v %d %v", f, a.Mode(), a.Size(), a.ModTime(), b.Mode(), b.Size(), b.ModTime())
				}
			}
			if l, _ := os.Readlink(filepath.Join(got, "bin", "server")); l != "../server.js" {
				t.Errorf("link: %q", l)
			}
			if m, _ := os.ReadFile(filepath.Join(got, ".bakery-built")); string(m) != "h" {
				t.Errorf("marker %q", m)
			}
			leftovers, _ := filepath.Glob(filepath.Join(dst, "apps", "web", "releases", "*.bakery-*"))
			if len(leftovers) > 0 {
				t.Errorf("leftovers %v", leftovers)
			}
		})
	}
}

// TestPackNotShippable: a release with a link out of itself is not packed
// (exit ExitNotShippable): its nodes build it themselves.
func TestPackNotShippable(t *testing.T) {
	for name, target := range map[string]string{"absolute": "/usr/bin/python3", "up": "../../../../x"} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			rel := strings.Repeat("b", 40)
			d := filepath.Join(root, "apps", "web", "releases", rel)
			writeFile(t, filepath.Join(d, ".bakery-built"), "h")
			os.MkdirAll(filepath.Join(d, "venv", "bin"), 0o755)
			os.Symlink(target, filepath.Join(d, "venv", "bin", "python"))
			_, stderr, err := packRelease(t, root, rel, FormatGzip)
			if exitCode(err) != ExitNotShippable || !strings.Contains(stderr, "venv/bin/python -> "+target) {
				t.Fatalf("%v: %s", err, stderr)
			}
		})
	}
}

// TestUnpackRefuses: archives that would write or point out of the
// release are refused, hash or not (the hash proves only that the bytes
// are the builder's).
func TestUnpackRefuses(t *testing.T) {
	type member struct {
		name, link string
		typ        byte
		mode       int64
	}
	cases := map[string][]member{
		"dotdot":          {{name: "../../escape", typ: tar.TypeReg}},
		"absolute":        {{name: "/etc/escape", typ: tar.TypeReg}},
		"absolute link":   {{name: "l", link: "/home/bakery-agent/.ssh/authorized_keys", typ: tar.TypeSymlink}},
		"link out":        {{name: "a/l", link: "../../x", typ: tar.TypeSymlink}},
		"hard link":       {{name: "f", typ: tar.TypeReg}, {name: "h", link: "f", typ: tar.TypeLink}},
		"setuid":          {{name: "f", typ: tar.TypeReg, mode: 0o4755}},
		"fifo":            {{name: "p", typ: tar.TypeFifo}},
		"write via links": {{name: "l", link: "/tmp", typ: tar.TypeSymlink}, {name: "l/x", typ: tar.TypeReg}},
	}
	for name, members := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			tw := tar.NewWriter(zw)
			for _, m := range members {
				mode := m.mode
				if mode == 0 {
					mode = 0o644
				}
				h := &tar.Header{Name: m.name, Linkname: m.link, Typeflag: m.typ, Mode: mode}
				if m.typ == tar.TypeReg {
					h.Size = 1
				}
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				if m.typ == tar.TypeReg {
					tw.Write([]byte("x"))
				}
			}
			tw.Close()
			zw.Close()
			root := t.TempDir()
			rel := strings.Repeat("c", 40)
			stderr, err := unpackArchive(t, root, rel, FormatGzip, buf.Bytes(), sumOf(buf.Bytes()))
			if exitCode(err) != ExitRefused {
				t.Fatalf("%v: %s", err, stderr)
			}
			t.Logf("%s", stderr)
			if _, err := os.Stat(filepath.Join(root, "apps", "web", "releases", rel)); !os.IsNotExist(err) {
				t.Errorf("a refused archive left a release: %v", err)
			}
			if _, err := os.Stat("/tmp/x"); err == nil && name == "write via links" {
				t.Errorf("wrote through a link")
			}
		})
	}
}
