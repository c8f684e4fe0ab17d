package main

import (
	"hash/fnv"
	"io"
	"os"
)

// colorizer paints log output per node (and stderr in red) when it goes
// to a terminal, or when asked to.
type colorizer struct{ on bool }

// newColorizer decides from --color: "always", "never" or "auto" (a
// terminal on w, and NO_COLOR unset).
func newColorizer(w io.Writer, mode string) (colorizer, error) {
	switch mode {
	case "always":
		return colorizer{true}, nil
	case "never":
		return colorizer{false}, nil
	case "", "auto":
		if os.Getenv("NO_COLOR") != "" {
			return colorizer{false}, nil
		}
		f, ok := w.(*os.File)
		if !ok {
			return colorizer{false}, nil
		}
		fi, err := f.Stat()
		return colorizer{err == nil && fi.Mode()&os.ModeCharDevice != 0}, nil
	}
	return colorizer{}, usageErrorf("--color must be auto, always or never, not %q", mode)
}

var nodeColors = []string{"36", "32", "35", "34", "33", "96", "92", "95"}

// node paints a node name with a color of its own.
func (c colorizer) node(name string) string {
	if !c.on || name == "" {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return "\x1b[" + nodeColors[h.Sum32()%uint32(len(nodeColors))] + "m" + name + "\x1b[0m"
}

// stream paints stderr red and Bakery's own lines bold.
func (c colorizer) stream(s string) string {
	if !c.on {
		return s
	}
	switch s {
	case "stderr":
		return "\x1b[31m" + s + "\x1b[0m"
	case "bakery":
		return "\x1b[1m" + s + "\x1b[0m"
	}
	return s
}
