package dht

import (
	"errors"
	"fmt"
	"testing"

	"github.com/anacrolix/dht/v2/krpc"
)

func TestParseBencodedString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"3:abc", "abc", true},
		{"0:", "", true},
		{"12:Hello World!", "Hello World!", true},
		{"3:ab", "", false},
		{"3:abcd", "", false},
		{"03:abc", "", false},
		{"-1:", "", false},
		{"+3:abc", "", false},
		{"abc", "", false},
		{":abc", "", false},
		{"i3e", "", false},
		{"d1:a1:be", "", false},
		{"10000:x", "", false},
		{"", "", false},
	} {
		got, ok := parseBencodedString([]byte(tc.in))
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("parseBencodedString(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIsKRPC(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", true},
		{"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qetrailing", true},
		{"d1:t2:aa1:y1:q", false}, // truncated
		{"d1:ai3ee", false},       // "a" is not a dictionary
		{"\x00\x01junk", false},
		{"", false},
		{"d", false},
	} {
		if got := isKRPC([]byte(tc.in)); got != tc.ok {
			t.Errorf("isKRPC(%q) = %v, want %v", tc.in, got, tc.ok)
		}
	}
}

func TestIsSeqRefusal(t *testing.T) {
	refusal := krpc.Error{Code: krpc.ErrorCodeSequenceNumberLessThanCurrent}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{refusal, true},
		{&refusal, true},
		{fmt.Errorf("put: %w", &refusal), true},
		{krpc.Error{Code: krpc.ErrorCodeInvalidSignature}, false},
		{(*krpc.Error)(nil), false},
		{errors.New("timeout"), false},
	} {
		if got := isSeqRefusal(tc.err); got != tc.want {
			t.Errorf("isSeqRefusal(%#v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
