//go:build tools

// Keeps `go mod tidy` from dropping the packages this wrapper module exists to build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
