package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
)

// IDSize is the length of an ID in bytes.
const IDSize = 32

// ID names a blob or a repository file.
type ID [IDSize]byte

// Hash returns the SHA-256 of data as an ID; it names repository files.
func Hash(data []byte) ID { return sha256.Sum256(data) }

// ParseID parses the 64-character hex form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("invalid ID %q: want %d hex digits, got %d", s, 2*IDSize, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid ID %q: %w", s, err)
	}
	return id, nil
}

// String returns the full hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, the form shown to operators.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsNull reports whether id is the zero ID.
func (id ID) IsNull() bool { return id == ID{} }

// Compare orders IDs bytewise.
func (id ID) Compare(other ID) int { return bytes.Compare(id[:], other[:]) }

// MarshalText encodes the ID as hex, so IDs read naturally in JSON.
func (id ID) MarshalText() ([]byte, error) {
	b := make([]byte, 2*IDSize)
	hex.Encode(b, id[:])
	return b, nil
}

// UnmarshalText decodes the hex form.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// SortIDs sorts ids in place.
func SortIDs(ids []ID) { slices.SortFunc(ids, ID.Compare) }

// Type says what a blob holds. Data and tree blobs live in separate packs so
// that metadata can be read without touching file content.
type Type uint8

const (
	// Data is a piece of file or stream content.
	Data Type = 1
	// Tree is an encoded directory listing.
	Tree Type = 2
)

func (t Type) String() string {
	switch t {
	case Data:
		return "data"
	case Tree:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// Valid reports whether t is a known blob type.
func (t Type) Valid() bool { return t == Data || t == Tree }
