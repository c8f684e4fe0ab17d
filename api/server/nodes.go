package server

import (
	"fmt"
	"net/http"
	"strings"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/scripts"
)

// InstallerPath serves scripts/install-node-agent.sh. It is outside /api/:
// public and read-only, needing no token (a new node has none).
const InstallerPath = "/install-node-agent.sh"

func (s *Server) installer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/x-shellscript; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(scripts.InstallNodeAgent)
}

// externalURL is the base URL clients reached this server at.
func (s *Server) externalURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) bootstrap(w http.ResponseWriter, r *http.Request) (any, error) {
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	if s.cfg.Loop == nil {
		return nil, errorf(http.StatusServiceUnavailable, "this server runs no control loop (started without SSH identity)")
	}
	if _, err := s.store.Get(r.Context(), api.KindNode, name); err != nil {
		return nil, err
	}
	key := s.cfg.Loop.PublicKey()
	url := s.externalURL(r) + InstallerPath
	// The key is single-quoted: it holds spaces and is copied into a shell.
	cmd := fmt.Sprintf("curl -fsSL %s | sudo bash -s -- --key '%s'", url, strings.ReplaceAll(key, "'", ""))
	return api.Bootstrap{Node: name, PublicKey: key, InstallerURL: url, Command: cmd}, nil
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) (any, error) {
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	if s.cfg.Loop == nil {
		return nil, errorf(http.StatusServiceUnavailable, "this server runs no control loop")
	}
	return s.cfg.Loop.VerifyNode(r.Context(), name)
}
