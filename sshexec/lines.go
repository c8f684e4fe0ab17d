package sshexec

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// emitter numbers lines from both streams and hands them to the sink, one
// at a time. A sink that blocks holds the lock, which stops both readers:
// that is the back-pressure.
type emitter struct {
	mu   sync.Mutex
	seq  int64
	sink Sink
}

// emit delivers the complete lines of one read under one lock.
func (e *emitter) emit(s Stream, t time.Time, lines [][]byte) {
	if e.sink == nil || len(lines) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range lines {
		e.seq++
		e.sink.Line(Line{Seq: e.seq, Stream: s, Time: t, Text: string(l)})
	}
}

// readBufs recycles the read buffers of pump (two per command).
var readBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// noSpaceText is what a failed write prints (strerror(ENOSPC)) on Linux.
var noSpaceText = []byte("No space left on device")

// capture keeps the first limit bytes of a stream, and notes whether the
// whole stream said noSpaceText.
type capture struct {
	limit     int
	buf       []byte
	truncated bool
	noSpace   bool
	tail      []byte // the end of the last write, for a match across writes
}

func (c *capture) write(p []byte) {
	if !c.noSpace {
		scan := append(c.tail, p...)
		c.noSpace = bytes.Contains(scan, noSpaceText)
		c.tail = append(c.tail[:0], scan[max(0, len(scan)-len(noSpaceText)+1):]...)
	}
	if c.limit <= 0 {
		return // the caller asked for no capture
	}
	room := c.limit - len(c.buf)
	if len(p) > room {
		p = p[:room]
		c.truncated = true
	}
	c.buf = append(c.buf, p...)
}

// pump reads r until EOF or error, splitting it into lines for the emitter
// and keeping the captured prefix. It returns the read error other than EOF.
func pump(r io.Reader, s Stream, e *emitter, c *capture) error {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	var partial []byte // an incomplete line carried to the next read
	var lines [][]byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Now()
			data := buf[:n]
			c.write(data)
			lines = lines[:0]
			for len(data) > 0 {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					partial = append(partial, data...)
					data = nil
					for len(partial) >= MaxLineBytes {
						// Copy: partial is reused below.
						lines = append(lines, append([]byte(nil), partial[:MaxLineBytes]...))
						partial = append(partial[:0], partial[MaxLineBytes:]...)
					}
					break
				}
				line := data[:i]
				data = data[i+1:]
				if len(partial) > 0 {
					partial = append(partial, line...)
					line = partial
					partial = nil
				}
				for len(line) > MaxLineBytes {
					lines = append(lines, line[:MaxLineBytes])
					line = line[MaxLineBytes:]
				}
				lines = append(lines, bytes.TrimSuffix(line, []byte{'\r'}))
			}
			e.emit(s, now, lines)
		}
		if err != nil {
			if len(partial) > 0 {
				e.emit(s, time.Now(), [][]byte{bytes.TrimSuffix(partial, []byte{'\r'})})
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}
