package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/mbackup/mbackup/engine/blob"
)

// KeySize is the size of each half of the master key.
const KeySize = 32

// Overhead is the number of bytes Seal adds: nonce and tag.
const Overhead = nonceSize + tagSize

const (
	nonceSize = 12
	tagSize   = 16
)

// ErrUnauthenticated says that a ciphertext failed authentication: it was
// damaged, tampered with, or sealed under another key.
var ErrUnauthenticated = errors.New("ciphertext verification failed")

// Key is a repository master key.
type Key struct {
	Encrypt [KeySize]byte `json:"encrypt"`
	ID      [KeySize]byte `json:"id"`

	aead     cipher.AEAD
	idPool   sync.Pool // of hash.Hash, HMAC under ID
	subPool  sync.Pool // of hash.Hash, HMAC under Encrypt
	initOnce sync.Once
	initErr  error
}

// NewRandomKey returns a fresh master key.
func NewRandomKey() (*Key, error) {
	k := &Key{}
	if _, err := rand.Read(k.Encrypt[:]); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if _, err := rand.Read(k.ID[:]); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, k.init()
}

func (k *Key) init() error {
	k.initOnce.Do(func() {
		block, err := aes.NewCipher(k.Encrypt[:])
		if err != nil {
			k.initErr = err
			return
		}
		k.aead, k.initErr = cipher.NewGCM(block)
		k.idPool.New = func() any { return hmac.New(sha256.New, k.ID[:]) }
		k.subPool.New = func() any { return hmac.New(sha256.New, k.Encrypt[:]) }
	})
	return k.initErr
}

// Valid reports whether the key is usable (both halves set).
func (k *Key) Valid() bool {
	return k.Encrypt != [KeySize]byte{} && k.ID != [KeySize]byte{} && k.init() == nil
}

// BlobID returns the ID of a blob with the given plaintext.
func (k *Key) BlobID(plaintext []byte) blob.ID {
	_ = k.init()
	h := k.idPool.Get().(hash.Hash)
	h.Reset()
	h.Write(plaintext)
	var id blob.ID
	h.Sum(id[:0])
	k.idPool.Put(h)
	return id
}

// Seal appends nonce ‖ ciphertext ‖ tag of plaintext under the master
// encryption key to dst. ad is authenticated but not stored.
func (k *Key) Seal(dst, plaintext, ad []byte) []byte {
	if err := k.init(); err != nil {
		panic("crypto: Seal with invalid key") // unreachable with keys from this package
	}
	return seal(k.aead, dst, plaintext, ad)
}

// Open authenticates and decrypts a value sealed by Seal, appending the
// plaintext to dst.
func (k *Key) Open(dst, sealed, ad []byte) ([]byte, error) {
	if err := k.init(); err != nil {
		return nil, err
	}
	return open(k.aead, dst, sealed, ad)
}

// SealBlob seals a blob's stored form under the subkey of its ID.
func (k *Key) SealBlob(dst, data []byte, id blob.ID) ([]byte, error) {
	aead, err := k.blobAEAD(id)
	if err != nil {
		return nil, err
	}
	return seal(aead, dst, data, id[:]), nil
}

// OpenBlob reverses SealBlob.
func (k *Key) OpenBlob(dst, sealed []byte, id blob.ID) ([]byte, error) {
	aead, err := k.blobAEAD(id)
	if err != nil {
		return nil, err
	}
	return open(aead, dst, sealed, id[:])
}

func (k *Key) blobAEAD(id blob.ID) (cipher.AEAD, error) {
	if err := k.init(); err != nil {
		return nil, err
	}
	h := k.subPool.Get().(hash.Hash)
	h.Reset()
	h.Write(id[:])
	var sub [sha256.Size]byte
	h.Sum(sub[:0])
	k.subPool.Put(h)
	block, err := aes.NewCipher(sub[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func seal(aead cipher.AEAD, dst, plaintext, ad []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, nonceSize)...)
	nonce := dst[start : start+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto: system random source failed: " + err.Error()) // crypto/rand never fails on Linux
	}
	return aead.Seal(dst, nonce, plaintext, ad)
}

func open(aead cipher.AEAD, dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than nonce and tag", ErrUnauthenticated, len(sealed))
	}
	out, err := aead.Open(dst, sealed[:nonceSize], sealed[nonceSize:], ad)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return out, nil
}
