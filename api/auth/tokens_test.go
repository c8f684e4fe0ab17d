package auth_test

import (
	"strings"
	"testing"

	"bakery.dev/bakery/api/auth"
)

func TestNewToken(t *testing.T) {
	tok, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "bkr_") || len(tok) != 4+43 {
		t.Fatalf("token %q", tok)
	}
	if hash != auth.HashToken(tok) || len(hash) != 64 {
		t.Fatalf("hash %q", hash)
	}
	tok2, _, _ := auth.NewToken()
	if tok2 == tok {
		t.Fatal("two tokens are equal")
	}
}
