// Package deps pins the fixed libraries in go.mod until the packages that use them exist.
package deps
import (
 _ "sigs.k8s.io/yaml"
 _ "golang.org/x/crypto/ssh"
 _ "golang.org/x/crypto/ssh/knownhosts"
 _ "golang.org/x/crypto/ssh/agent"
 _ "github.com/jackc/pgx/v5"
 _ "github.com/gorilla/mux"
 _ "github.com/fsnotify/fsnotify"
 _ "github.com/google/go-cmp/cmp"
 _ "github.com/spf13/cobra"
 _ "github.com/aymanbagabas/go-udiff"
)
