// Package transfer moves files between two nodes over a QUIC stream:
// the wire format, the sender and receiver state machines, chunk
// hashing, staging and the atomic commit into the downloads folder.
//
// # Protocol
//
// The sender opens a stream per file and speaks first:
//
//	sender                           receiver
//	OFFER id, name, size, chunk  ->
//	                             <-  ACCEPT have-bitmap | REJECT reason
//	CHUNK i, sha256, data ...    ->  (verify, write, fsync, record)
//	                             <-  ACK i... | NAK i
//	END root                     ->  (check root, fsync, rename)
//	                             <-  END_ACK final-name
//
// Either side may send ABORT with a reason instead of its next frame.
// Chunks are pipelined: the sender never waits for an ACK before the
// next CHUNK, so QUIC's flow control is the only window. ACKs come in
// batches, each sent only after the chunks it names are durable on the
// receiver's disk and recorded in its Journal, so an ACKed
// chunk is never sent again, even after a crash.
//
// From version 2 on, a sender may also open lanes: streams on other
// QUIC connections to the same peer, each opened with LANE id and then
// carrying CHUNKs of the file, so that a path with random loss is
// filled by several congestion controllers instead of one (lanes.go).
// From version 3 on, a small file (one chunk, at most 64 KiB) goes
// whole: OFFER, CHUNK and END at once, before the ACCEPT, so that it
// costs one round trip instead of three (eager.go); the receiver still
// admits the OFFER before it reads the rest.
// Versions are negotiated per file (negotiate.go); the receiver reads
// every chunk in pieces straight into its staging file (stream.go,
// intake.go), so lanes cost it no memory beyond one chunk's buffer.
//
// The whole-file hash ("root") is SHA-256 over the concatenated SHA-256
// hashes of the chunks in order, as in Dropbox's content hash: both
// sides compute it chunk by chunk without a second pass over the file,
// and a resumed transfer checks that the chunks it kept and the chunks
// it received belong to the same version of the file.
//
// # What a peer may take
//
// A receiver admits an OFFER before it allocates, reserves or records
// anything for it: the peer must stay within its share (at most
// MaxUnfinishedPerPeer unfinished transfers and DiskLimits.MaxStagedPerPeer
// bytes staged), the file must leave DiskLimits.MinFree free on disk
// (checked with statfs before fallocate), and its receive buffer must fit
// the memory budget of its Quota. A refusal (CodeNoSpace, CodeBusy; the
// sender tries again later) leaves no record, file or blocks behind. An
// admitted transfer holds at most a chunk of the size its OFFER declared
// (the Reader refuses larger CHUNK frames from their header) and a
// have-bitmap of at most 1 MiB; the whole-file hash is computed from the
// chunk hashes in the Journal.
package transfer
