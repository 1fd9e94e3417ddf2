package main

import "testing"

// TestCommandTree checks that every documented command path resolves to
// the command of that name: a subcommand added to the wrong parent is
// otherwise only noticed by a user typing it.
func TestCommandTree(t *testing.T) {
	root := newRoot()
	for _, path := range [][]string{
		{"agent"}, {"id"}, {"connect"}, {"peers"}, {"peers", "remove"}, {"peers", "rename"},
		{"accept"}, {"decline"}, {"send"}, {"status"}, {"msg"}, {"messages"}, {"nat"},
		{"events"}, {"logs"}, {"config"}, {"config", "set"}, {"dht-node"}, {"docs"},
	} {
		cmd, rest, err := root.Find(path)
		if err != nil {
			t.Errorf("%v: %v", path, err)
			continue
		}
		if len(rest) != 0 || cmd.Name() != path[len(path)-1] || cmd == root {
			t.Errorf("%v resolves to %q (left over %v)", path, cmd.CommandPath(), rest)
		}
	}
	id, _, err := root.Find([]string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range id.Commands() {
		t.Errorf("id has a subcommand %q; it belongs elsewhere", c.Name())
	}
}
