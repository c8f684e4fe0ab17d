package nodescript

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// AnalyticsInput is the input of analytics.
type AnalyticsInput struct {
	// Apps are read in this order, each from its position in Positions
	// (zero: from the start).
	Apps      []string
	Positions map[string]api.LogPosition
	// MaxBytes bounds what is read of one app's log (default 8 MiB).
	MaxBytes int64
	// LogDir holds the access logs (default nodefiles.AccessLogDir);
	// AppsDir the apps' directories (default $BAKERY_ROOT/apps). Tests
	// point them at a local directory.
	LogDir, AppsDir string
}

// Analytics prints, per app, what its nginx access log gained since the
// app's position (following a rotation to the .1 file) and the app's disk
// usage (releases, repository, access log and, dockerized, images);
// [ParseAnalytics] reads its output.
var Analytics = define("analytics", func(in AnalyticsInput, c *call) {
	specs := make([]string, len(in.Apps))
	for i, app := range in.Apps {
		if msg := api.ValidateName(app); msg != "" {
			c.fail("app name %q %s", app, msg)
		}
		p := in.Positions[app]
		specs[i] = fmt.Sprintf("%s:%d:%d", app, p.Inode, p.Offset)
	}
	maxBytes := in.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 8 << 20
	}
	logDir := in.LogDir
	if logDir == "" {
		logDir = nf.AccessLogDir
	}
	c.set("LOGS", strings.Join(specs, " "))
	c.setInt("MAX", maxBytes)
	c.set("LOGDIR", logDir)
	c.set("APPS", in.AppsDir)
})

// AppRead is what one read of an app's access log found.
type AppRead struct {
	Blocks []LogBlock
	Disk   api.AppDisk
}

// LogBlock is one piece of an access log as the node sent it.
type LogBlock struct {
	// Old says it comes from the rotated file (.1).
	Old   bool
	Inode uint64
	// Size is the file's size and Offset where the data starts in it.
	Size, Offset int64
	Data         []byte
	// WantN is the number of bytes announced (Data is shorter when the
	// file shrank while being read).
	WantN int64
	// RestOfOld says the block holds the whole rest of the rotated file.
	RestOfOld bool
}

// ParseAnalytics parses the output of analytics: per app, the log blocks
// read and the disk usage. A node is not trusted to be well-formed: a
// count larger than the output is a short read, never a large allocation.
func ParseAnalytics(out []byte) (map[string]*AppRead, error) {
	found := map[string]*AppRead{}
	r := bufio.NewReader(bytes.NewReader(out))
	var cur *AppRead
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return found, nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "@app":
			if len(f) != 2 {
				return nil, fmt.Errorf("analytics: bad line %q", line)
			}
			cur = &AppRead{}
			found[f[1]] = cur
		case "@old", "@file":
			if cur == nil || len(f) != 5 {
				return nil, fmt.Errorf("analytics: bad line %q", line)
			}
			ino, e1 := strconv.ParseUint(f[1], 10, 64)
			size, e2 := strconv.ParseInt(f[2], 10, 64)
			off, e3 := strconv.ParseInt(f[3], 10, 64)
			n, e4 := strconv.ParseInt(f[4], 10, 64)
			if err := errors.Join(e1, e2, e3, e4); err != nil || n < 0 || off < 0 || size < 0 {
				return nil, fmt.Errorf("analytics: bad line %q", line)
			}
			// n comes from the node: never allocate more than the output
			// holds (a lying count is a short read below).
			data := make([]byte, min(n, int64(len(out))))
			got, _ := io.ReadFull(r, data)
			// The data is followed by a newline; a short read means the
			// file shrank while being read: use what came.
			data = data[:got]
			if got == int(n) {
				if b, err := r.ReadByte(); err != nil || b != '\n' {
					return nil, errors.New("analytics: data block not followed by a newline")
				}
			}
			cur.Blocks = append(cur.Blocks, LogBlock{Old: f[0] == "@old", Inode: ino, Size: size, Offset: off, Data: data, WantN: n,
				RestOfOld: f[0] == "@old" && off+n == size})
		case "@disk":
			if cur == nil || len(f) != 5 {
				return nil, fmt.Errorf("analytics: bad line %q", line)
			}
			cur.Disk.Releases, _ = strconv.ParseInt(f[1], 10, 64)
			cur.Disk.Repo, _ = strconv.ParseInt(f[2], 10, 64)
			cur.Disk.AccessLog, _ = strconv.ParseInt(f[3], 10, 64)
			cur.Disk.Images, _ = strconv.ParseInt(f[4], 10, 64)
		default:
			return nil, fmt.Errorf("analytics: unexpected line %q", line)
		}
	}
}
