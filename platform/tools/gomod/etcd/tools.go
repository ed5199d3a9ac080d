//go:build tools

// Keeps `go mod tidy` from dropping the one package this wrapper module exists to build.
package tools

import _ "go.etcd.io/etcd/server/v3"
