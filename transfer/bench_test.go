package transfer

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkChunkHash measures SHA-256 over one default chunk: it must be
// far faster than the link so hashing is never the bottleneck.
func BenchmarkChunkHash(b *testing.B) {
	data := make([]byte, DefaultChunkSize)
	rand.Read(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sha256.Sum256(data)
	}
}

// BenchmarkSendReceive moves a 256 MiB file over real QUIC on loopback
// into a real downloads folder and state database: the protocol's own
// ceiling, without NATs.
func BenchmarkSendReceive(b *testing.B) {
	const size = 256 << 20
	r := newRig(b)
	src := filepath.Join(b.TempDir(), "bench.bin")
	f, _ := os.Create(src)
	io.CopyN(f, rand.Reader, size)
	f.Close()
	b.SetBytes(size)
	for b.Loop() {
		res := r.transfer(b.Context(), b.Context(), Source{ID: newID(), Path: src, Name: "bench.bin"}, nil)
		if res.sendErr != nil || res.recvErr != nil {
			b.Fatal(res.sendErr, res.recvErr)
		}
		os.Remove(filepath.Join(r.downloads, res.name))
	}
}

// BenchmarkBareQUIC moves 256 MiB on one stream of the same kind of
// connection, reading into nothing: the ceiling BenchmarkSendReceive is
// compared with.
func BenchmarkBareQUIC(b *testing.B) {
	const size = 256 << 20
	client, server := quicPair(b)
	buf := make([]byte, 256<<10)
	b.SetBytes(size)
	for b.Loop() {
		s, err := client.OpenStreamSync(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			in, err := server.AcceptStream(b.Context())
			if err == nil {
				_, err = io.Copy(io.Discard, in)
			}
			done <- err
		}()
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := s.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
