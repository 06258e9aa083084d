package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/scrypt"
)

// KDFParams are scrypt's cost parameters.
type KDFParams struct {
	N int `json:"N"`
	R int `json:"r"`
	P int `json:"p"`
}

// DefaultKDFParams returns the cost used for new key files: two lanes of
// 32 MiB each, computed one after the other, roughly 0.2 s on a current
// CPU. Guessing a password costs as much work as with one 64 MiB lane, but
// opening the repository (every command does) needs half the memory: the
// appliance runs on machines billed by memory.
func DefaultKDFParams() KDFParams { return KDFParams{N: 1 << 15, R: 8, P: 2} }

// Limits on what a key file may ask of the machine opening it: scrypt
// needs 128·N·r bytes of memory and time in proportion to N·r·p. Both are
// 16 times the defaults, enough for a deliberately slower key.
const (
	maxKDFMemory = 1 << 30 // bytes
	maxKDFWork   = 1 << 23 // N·r·p
)

// Validate rejects parameters that are insecure or absurd, so a damaged or
// hostile key file cannot make opening the repository allocate gigabytes.
func (p KDFParams) Validate() error {
	switch {
	case p.N < 2 || p.N&(p.N-1) != 0:
		return fmt.Errorf("scrypt N=%d is not a power of two above 1", p.N)
	case p.N > 1<<22:
		return fmt.Errorf("scrypt N=%d is too large", p.N)
	case p.R < 1 || p.R > 32 || p.P < 1 || p.P > 16:
		return fmt.Errorf("scrypt r=%d p=%d out of range", p.R, p.P)
	case 128*int64(p.N)*int64(p.R) > maxKDFMemory:
		return fmt.Errorf("scrypt N=%d r=%d needs %d MiB of memory, more than the %d MiB allowed", p.N, p.R, 128*int64(p.N)*int64(p.R)>>20, maxKDFMemory>>20)
	case int64(p.N)*int64(p.R)*int64(p.P) > maxKDFWork:
		return fmt.Errorf("scrypt N=%d r=%d p=%d is too slow to derive", p.N, p.R, p.P)
	}
	return nil
}

// ErrWrongPassword is returned when no key file opens with the password.
var ErrWrongPassword = errors.New("wrong password, or no key file matches it")

// WrappedKey is the stored form of a master key: the KDF parameters, the
// salt, and the master key sealed under the password-derived key. Nothing
// in it is plaintext except the parameters and the salt.
type WrappedKey struct {
	KDF  string    `json:"kdf"`
	Cost KDFParams `json:"cost"`
	Salt []byte    `json:"salt"`
	Data []byte    `json:"data"`
}

// keyPayload is what a key file seals: the master key plus metadata that
// would otherwise sit in plaintext.
type keyPayload struct {
	Master *Key   `json:"master"`
	Meta   []byte `json:"meta,omitempty"`
}

// Wrap seals master (and opaque metadata) under a key derived from password.
func Wrap(master *Key, password string, meta []byte, p KDFParams) (*WrappedKey, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("generate salt: %w", err)
	}
	aead, err := kek(password, salt, p)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(keyPayload{Master: master, Meta: meta})
	if err != nil {
		return nil, err
	}
	return &WrappedKey{KDF: "scrypt", Cost: p, Salt: salt, Data: seal(aead, nil, plain, []byte("mbackup key"))}, nil
}

// Unwrap recovers the master key and metadata; a wrong password yields
// ErrWrongPassword.
func (w *WrappedKey) Unwrap(password string) (*Key, []byte, error) {
	if w.KDF != "scrypt" {
		return nil, nil, fmt.Errorf("unknown key derivation %q", w.KDF)
	}
	if err := w.Cost.Validate(); err != nil {
		return nil, nil, err
	}
	aead, err := kek(password, w.Salt, w.Cost)
	if err != nil {
		return nil, nil, err
	}
	plain, err := open(aead, nil, w.Data, []byte("mbackup key"))
	if err != nil {
		return nil, nil, ErrWrongPassword
	}
	var payload keyPayload
	if err := json.Unmarshal(plain, &payload); err != nil || payload.Master == nil {
		return nil, nil, fmt.Errorf("decode master key: malformed payload")
	}
	if !payload.Master.Valid() {
		return nil, nil, fmt.Errorf("decode master key: key is empty")
	}
	return payload.Master, payload.Meta, nil
}

func kek(password string, salt []byte, p KDFParams) (cipher.AEAD, error) {
	if len(salt) < 16 {
		return nil, fmt.Errorf("salt of %d bytes is too short", len(salt))
	}
	dk, err := scrypt.Key([]byte(password), salt, p.N, p.R, p.P, KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
