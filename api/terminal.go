package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The terminal protocol of POST /api/v1/deployments/{name}/exec with
// "tty": true (bakery exec -it). The request body is the JSON ExecRequest
// followed by frames from the client; the answer (Content-Type
// TerminalContentType) is frames from the server. A frame is one type
// byte, a big-endian uint16 length and that many bytes.
const (
	TerminalContentType = "application/vnd.bakery.terminal"
	// FrameData carries terminal bytes (keys typed; the terminal's output).
	FrameData = 'd'
	// FrameResize (client) carries rows and cols as two big-endian uint16.
	FrameResize = 'r'
	// FrameEnd (server, last) carries the JSON ExecEnd.
	FrameEnd = 'e'
	// MaxFrame bounds a frame's payload.
	MaxFrame = 32 << 10
)

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("terminal frame of %d bytes (at most %d)", len(payload), MaxFrame)
	}
	b := make([]byte, 3+len(payload))
	b[0] = typ
	binary.BigEndian.PutUint16(b[1:3], uint16(len(payload)))
	copy(b[3:], payload)
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame (io.EOF at a clean end between frames).
func ReadFrame(r io.Reader) (typ byte, payload []byte, err error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("terminal frame: %w", err)
		}
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(h[1:3]))
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("terminal frame of %d bytes (at most %d)", n, MaxFrame)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("terminal frame: %w", err)
	}
	return h[0], payload, nil
}

// ResizePayload encodes a FrameResize payload.
func ResizePayload(rows, cols int) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b[0:2], uint16(rows))
	binary.BigEndian.PutUint16(b[2:4], uint16(cols))
	return b
}

// ParseResize decodes a FrameResize payload.
func ParseResize(b []byte) (rows, cols int, ok bool) {
	if len(b) != 4 {
		return 0, 0, false
	}
	return int(binary.BigEndian.Uint16(b[0:2])), int(binary.BigEndian.Uint16(b[2:4])), true
}
