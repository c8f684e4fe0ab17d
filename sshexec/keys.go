package sshexec

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// GenerateKey mints an ed25519 key pair for Bakery to log in to nodes with.
// privatePEM is the private key in OpenSSH format ("-----BEGIN OPENSSH
// PRIVATE KEY-----"), readable by [ParsePrivateKey] and by ssh(1);
// authorizedKey is the public key as one authorized_keys line (without a
// trailing newline), with comment appended when it is not empty.
func GenerateKey(comment string) (privatePEM []byte, authorizedKey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("sshexec: generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, "", fmt.Errorf("sshexec: marshal private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("sshexec: public key: %w", err)
	}
	line := FormatPublicKey(sshPub)
	if comment = strings.TrimSpace(comment); comment != "" {
		line += " " + comment
	}
	return pem.EncodeToMemory(block), line, nil
}

// ParsePrivateKey parses a stored, unencrypted private key (OpenSSH or PEM
// format) into a signer for [Config].Signer.
func ParsePrivateKey(privatePEM []byte) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(privatePEM)
	if err != nil {
		return nil, fmt.Errorf("sshexec: parse private key: %w", err)
	}
	return s, nil
}

// ParsePublicKey parses a key in authorized_keys format ("ssh-ed25519
// AAAA... comment"), as pinned in a Node spec's hostKey.
func ParsePublicKey(s string) (ssh.PublicKey, error) {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("sshexec: parse public key: %w", err)
	}
	return k, nil
}

// FormatPublicKey formats k in authorized_keys format without comment or
// newline: the form [Target].HostKey takes and [Pool.HostKey] reports.
func FormatPublicKey(k ssh.PublicKey) string {
	return string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(k)))
}
