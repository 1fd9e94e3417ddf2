package transfer

import (
	"errors"
	"fmt"

	"github.com/punchdrop/punchdrop/safetext"
)

// Code says why a transfer was refused or aborted. Values are on the
// wire: never renumber.
type Code uint8

// Reasons for REJECT and ABORT.
const (
	CodeRefused       Code = 1 // the receiver will not take this file (unsafe name, not wanted)
	CodeNoSpace       Code = 2 // the receiver's disk is full; try again later
	CodeBusy          Code = 3 // too many transfers at once; try again later
	CodeVersion       Code = 4 // the other side speaks another protocol version
	CodeSourceChanged Code = 5 // the file changed while it was sent; start over
	CodeCorrupt       Code = 6 // chunks or the whole file failed verification
	CodeIO            Code = 7 // a read or write failed on the side that aborts
	CodeProtocol      Code = 8 // a frame broke the protocol
	CodeCancelled     Code = 9 // the user or a shutdown stopped it
)

var codeNames = [...]string{
	CodeRefused: "refused", CodeNoSpace: "no space", CodeBusy: "busy", CodeVersion: "version",
	CodeSourceChanged: "source changed", CodeCorrupt: "corrupt", CodeIO: "I/O error",
	CodeProtocol: "protocol error", CodeCancelled: "cancelled",
}

func (c Code) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// Retryable reports whether trying the same file again later may work.
func (c Code) Retryable() bool {
	switch c {
	case CodeRefused, CodeVersion, CodeProtocol:
		return false
	}
	return true
}

// Error is a refusal or abort, sent or received. Remote is true when the
// other side decided it.
type Error struct {
	Code   Code
	Reason string
	Remote bool
	cause  error // what went wrong locally, if it is an error of its own
}

func (e *Error) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	return fmt.Sprintf("%s: %s (%s)", who, e.Reason, e.Code)
}

// remoteError is the other side's refusal or abort. Its reason is the
// peer's own words, cleaned of anything that could steer a terminal or
// hide what it says.
func remoteError(code Code, reason string) *Error {
	return &Error{Code: code, Reason: safetext.Clean(reason), Remote: true}
}

// Unwrap returns the error the refusal stems from, if any: ErrTooLarge
// for a frame larger than the offer allows, say.
func (e *Error) Unwrap() error { return e.cause }

// Retryable reports whether the transfer should stay queued.
func (e *Error) Retryable() bool { return e.Code.Retryable() }

// Retryable reports whether err leaves the file worth trying again:
// everything but a refusal for good. Lost connections are retryable.
func Retryable(err error) bool {
	var te *Error
	if errors.As(err, &te) {
		return te.Retryable()
	}
	return true
}
