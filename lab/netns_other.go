//go:build !linux

package lab

import (
	"errors"
	"fmt"
)

// errNoNamespaces is returned on systems without Linux network namespaces.
var errNoNamespaces = errors.New("network namespaces need Linux")

// inNamespace fails: the lab runs only on Linux. It exists so that the
// packages importing lab still build for other systems.
func inNamespace(ns string, fn func() error) error {
	return fmt.Errorf("enter namespace %s: %w", ns, errNoNamespaces)
}
