package manager

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// NewServerID returns an id for this control plane process, stable for its
// life and unique among the servers sharing a store: the host name (at
// most 30 bytes), the process id and 4 random bytes, e.g.
// "web-1-4242-9f86d081". It is at most 51 bytes.
func NewServerID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, host)
	if host == "" {
		host = "host"
	}
	if len(host) > 30 {
		host = host[:30]
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
