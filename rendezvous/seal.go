package rendezvous

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Key derivation and binding strings (see the package doc).
const (
	recordKeySalt = "punchdrop rendezvous v1"
	recordKeyInfo = "record key"
	recordAD      = "punchdrop record v1"
)

// ValueSize is the size of every record's "v": XChaCha20's 24-byte nonce,
// then the padded plaintext sealed with its 16-byte Poly1305 tag. Bencoded
// it takes 300 of the 1000 bytes BEP 44 allows.
const ValueSize = chacha20poly1305.NonceSizeX + plainSize + chacha20poly1305.Overhead

// Errors of Open, beyond ErrBadItem, ErrBadSignature and ErrBadRecord.
var (
	// ErrWrongKey is returned when an item's key is not the peer's
	// blinded key for the period asked about.
	ErrWrongKey = errors.New("item is not signed by this peer's key for this period")
	// ErrNotNewer is returned for an authentic record whose sequence
	// number is not above the one the reader holds: a replay, a rollback,
	// or simply the record it already has.
	ErrNotNewer = errors.New("record is not newer than the one held")
	// ErrStale is returned for an authentic record older than
	// MaxRecordAge.
	ErrStale = errors.New("record is too old")
	// ErrFromFuture is returned for an authentic record dated more than
	// MaxClockSkew after the reader's clock.
	ErrFromFuture = errors.New("record is dated in the future")
)

// recordKey derives the key a period's record is encrypted under:
// HKDF-SHA256 of the node ID (the secret every holder of the connection
// string has and no DHT node has), salted with recordKeySalt, for
// recordKeyInfo and the period.
func recordKey(id ed25519.PublicKey, p Period) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, id, []byte(recordKeySalt), recordKeyInfo+string(p.bytes()), chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive record key: %w", err)
	}
	return key, nil
}

// additionalData binds a ciphertext to the blinded key and sequence number
// it is published with, so it cannot be moved to another item, even by a
// reader who can make ciphertexts.
func additionalData(key BlindedKey, seq int64) []byte {
	ad := append([]byte(recordAD), key[:]...)
	return binary.BigEndian.AppendUint64(ad, uint64(seq))
}

// Seal makes the BEP 44 item that publishes rec for period p, signed with
// the node key priv blinded for p and encrypted under the record key of
// the node ID and p. rec.Seq must be at least 1 (see NextSeq).
func Seal(priv ed25519.PrivateKey, p Period, rec Record) (Item, error) {
	return seal(priv, p, rec, rand.Reader)
}

// seal is Seal with the nonce read from random.
func seal(priv ed25519.PrivateKey, p Period, rec Record, random io.Reader) (Item, error) {
	if rec.Seq < 1 {
		return Item{}, fmt.Errorf("seal record: sequence number %d, want at least 1", rec.Seq)
	}
	plain, err := encodeRecord(rec)
	if err != nil {
		return Item{}, fmt.Errorf("seal record: %w", err)
	}
	return sealPlain(priv, p, rec.Seq, plain, random)
}

// sealPlain encrypts and signs any plaintext; tests use it to make items
// that are authentic but hold what encodeRecord would never write.
func sealPlain(priv ed25519.PrivateKey, p Period, seq int64, plain []byte, random io.Reader) (Item, error) {
	signer, err := NewBlindedSigner(priv, p)
	if err != nil {
		return Item{}, fmt.Errorf("seal record: %w", err)
	}
	// The node ID from the seed, as the signer takes it.
	key, err := recordKey(ed25519.NewKeyFromSeed(priv.Seed()).Public().(ed25519.PublicKey), p)
	if err != nil {
		return Item{}, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return Item{}, fmt.Errorf("seal record: %w", err)
	}
	value := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plain)+chacha20poly1305.Overhead)
	if _, err := io.ReadFull(random, value); err != nil {
		return Item{}, fmt.Errorf("seal record: nonce: %w", err)
	}
	it := Item{Key: signer.Public(), Seq: seq}
	it.Value = aead.Seal(value, value, plain, additionalData(it.Key, it.Seq))
	it.Sig = signer.Sign(it.SignedBytes())
	if err := it.Check(); err != nil { // sizes
		return Item{}, fmt.Errorf("seal record: %w", err)
	}
	return it, nil
}

// Open checks and reads the record in it, an item found at the target of
// the peer whose node ID is id, for period p. It refuses, with an error
// naming why, an item that is not signed by id's blinded key for p, that
// does not decrypt or decode, whose time is more than MaxRecordAge before
// now or MaxClockSkew after it, or whose sequence number is not above held
// (the highest this reader has opened for the peer, 0 if none). It never
// panics, whatever the item holds.
func Open(id ed25519.PublicKey, p Period, it Item, now time.Time, held int64) (Record, error) {
	want, err := BlindPublicKey(id, p)
	if err != nil {
		return Record{}, err
	}
	switch {
	case it.Key != want:
		return Record{}, ErrWrongKey
	case len(it.Salt) != 0:
		return Record{}, fmt.Errorf("%w: records have no salt", ErrBadItem)
	case it.Seq < 1:
		return Record{}, fmt.Errorf("%w: sequence number %d", ErrBadItem, it.Seq)
	case len(it.Value) != ValueSize:
		return Record{}, fmt.Errorf("%w: value is %d bytes, want %d", ErrBadItem, len(it.Value), ValueSize)
	}
	if err := it.Check(); err != nil {
		return Record{}, err
	}
	if it.Seq <= held {
		return Record{}, fmt.Errorf("%w: sequence number %d, holding %d", ErrNotNewer, it.Seq, held)
	}
	key, err := recordKey(id, p)
	if err != nil {
		return Record{}, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return Record{}, fmt.Errorf("open record: %w", err)
	}
	nonce, sealed := it.Value[:chacha20poly1305.NonceSizeX], it.Value[chacha20poly1305.NonceSizeX:]
	plain, err := aead.Open(nil, nonce, sealed, additionalData(it.Key, it.Seq))
	if err != nil {
		return Record{}, fmt.Errorf("%w: value does not decrypt", ErrBadItem)
	}
	rec, err := decodeRecord(plain)
	if err != nil {
		return Record{}, err
	}
	switch age := now.Sub(rec.Time); {
	case age > MaxRecordAge:
		return Record{}, fmt.Errorf("%w: made %v ago", ErrStale, age.Round(time.Second))
	case -age > MaxClockSkew:
		return Record{}, fmt.Errorf("%w: %v ahead of this clock", ErrFromFuture, (-age).Round(time.Second))
	}
	rec.Seq = it.Seq
	return rec, nil
}
