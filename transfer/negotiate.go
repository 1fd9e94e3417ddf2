package transfer

import (
	"context"
	"errors"
	"fmt"
)

// Version negotiation. A sender offers a file in the newest version it
// speaks. A receiver answers in the version of the OFFER, for any it
// speaks; one that speaks only older versions refuses the OFFER with
// CodeVersion, in a frame of its own version (a build of version 1 does
// that), and the sender offers the file again in that version, on a new
// stream. A receiver that speaks only newer versions refuses in a frame
// the sender cannot read: the sender fails with CodeVersion (wrapping
// ErrVersion), which is not retryable, and the user learns to update.

// olderPeerError is a refusal of our version by a peer that answered in
// an older one, which it speaks.
type olderPeerError struct {
	refusal *Error
	version uint8
}

func (e *olderPeerError) Error() string {
	return fmt.Sprintf("%v; the peer speaks version %d", e.refusal, e.version)
}

func (e *olderPeerError) Unwrap() error { return e.refusal }

// versionError explains err, the answer to an OFFER of version ours:
// a refusal of our version in a frame of an older version (theirs) is
// an olderPeerError, and a frame of a version we do not speak says the
// peer is newer.
func versionError(err error, theirs, ours uint8) error {
	var te *Error
	switch {
	case errors.As(err, &te) && te.Remote && te.Code == CodeVersion && theirs >= MinVersion && theirs < ours:
		return &olderPeerError{refusal: te, version: theirs}
	case errors.Is(err, ErrVersion):
		return &Error{Code: CodeVersion, Remote: true, cause: err,
			Reason: fmt.Sprintf("the peer answered in a protocol version this build does not speak (%v); update punchdrop", err)}
	}
	return err
}

// StreamOpener opens a stream to the peer a file goes to.
type StreamOpener func(ctx context.Context) (Stream, error)

// SendOver is Send on a stream it opens, in the newest version both
// sides speak: refused by a peer of an older version, it offers the file
// again in that version on a new stream.
func SendOver(ctx context.Context, open StreamOpener, src Source, progress Progress) (Result, error) {
	for {
		stream, err := open(ctx)
		if err != nil {
			return Result{}, err
		}
		res, err := Send(ctx, stream, src, progress)
		var older *olderPeerError
		if errors.As(err, &older) && older.version < versionOr(src.Version) {
			src.Version = older.version
			continue
		}
		return res, err
	}
}
