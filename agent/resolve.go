package agent

import (
	"fmt"
	"strings"

	"github.com/punchdrop/punchdrop/session"
)

// resolve finds the one item that arg names: a full node ID, a name
// (case-insensitive), or a unique prefix of an ID. keys returns an item's
// ID and name.
func resolve[T any](arg string, items []T, keys func(T) (id, name string)) (T, error) {
	var zero T
	if strings.TrimSpace(arg) == "" {
		return zero, fmt.Errorf("no peer given")
	}
	norm := session.NormalizeIDText(arg)
	var byName, byPrefix []T
	var names []string
	for _, it := range items {
		id, name := keys(it)
		if id == norm {
			return it, nil
		}
		if strings.EqualFold(name, arg) {
			byName = append(byName, it)
		}
		if norm != "" && strings.HasPrefix(id, norm) {
			byPrefix = append(byPrefix, it)
			names = append(names, fmt.Sprintf("%s (%s)", name, id[:session.ShortIDLen]))
		}
	}
	switch {
	case len(byName) == 1:
		return byName[0], nil
	case len(byName) > 1:
		return zero, fmt.Errorf("%d peers are named %q; use a node ID prefix instead", len(byName), arg)
	case len(byPrefix) == 1:
		return byPrefix[0], nil
	case len(byPrefix) > 1:
		return zero, fmt.Errorf("%q matches several peers: %s", arg, strings.Join(names, ", "))
	}
	return zero, fmt.Errorf("no peer matches %q (see \"punchdrop peers\")", arg)
}
