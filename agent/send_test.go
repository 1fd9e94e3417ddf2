package agent

import (
	"testing"

	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/transfer"
)

// TestSpokenVersions: a session that took a file in an older version
// is offered the next in it; another session of the same peer (it may
// have been updated), or one that took ours, negotiates afresh.
func TestSpokenVersions(t *testing.T) {
	var v spokenVersions
	peer := session.NodeID{1}
	first, second := &session.Session{Peer: peer}, &session.Session{Peer: peer}
	steps := []struct {
		took       *session.Session
		version    uint8
		first, sec uint8 // what each session is offered afterwards
	}{
		{nil, 0, 0, 0},
		{first, 0, 0, 0}, // no offer made: nothing learnt
		{first, 2, 2, 0},
		{first, 1, 1, 0},
		{second, transfer.Version, 0, 0},
		{second, 2, 0, 2},
		{second, transfer.Version, 0, 0},
	}
	for k, st := range steps {
		if st.took != nil {
			v.took(st.took, st.version)
		}
		if got1, got2 := v.version(first), v.version(second); got1 != st.first || got2 != st.sec {
			t.Fatalf("step %d: offered %d and %d, want %d and %d", k, got1, got2, st.first, st.sec)
		}
	}
}
