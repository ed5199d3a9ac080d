//go:build tools

// Keeps `go mod tidy` from dropping the one package this wrapper module exists to build.
package tools

import _ "k8s.io/kube-state-metrics/v2"
