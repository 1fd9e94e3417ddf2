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
// receiver's disk and recorded in its state database, so an ACKed
// chunk is never sent again, even after a crash.
//
// The whole-file hash ("root") is SHA-256 over the concatenated SHA-256
// hashes of the chunks in order, as in Dropbox's content hash: both
// sides compute it chunk by chunk without a second pass over the file,
// and a resumed transfer checks that the chunks it kept and the chunks
// it received belong to the same version of the file.
package transfer
