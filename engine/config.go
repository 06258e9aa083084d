package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/restic/chunker"
)

// FormatVersion is the repository format this code writes and reads.
const FormatVersion = 1

// Compression selects the zstd effort for new blobs.
type Compression string

// Compression levels.
const (
	CompressionAuto    Compression = "auto"    // zstd default level
	CompressionFastest Compression = "fastest" // zstd fastest level
	CompressionBetter  Compression = "better"  // zstd better compression
	CompressionOff     Compression = "off"     // store raw
)

// Valid reports whether c is a known level.
func (c Compression) Valid() bool {
	switch c {
	case CompressionAuto, CompressionFastest, CompressionBetter, CompressionOff:
		return true
	}
	return false
}

// Config is the repository's immutable configuration, stored sealed in the
// config file at init.
type Config struct {
	Version    int         `json:"version"`
	ID         string      `json:"id"`
	Polynomial chunker.Pol `json:"chunker_polynomial"`
	// Chunk sizes. Streams and files larger than MinChunk are cut at
	// content-defined boundaries averaging MinChunk + 2^AverageBits bytes;
	// smaller files are one blob each.
	MinChunk    uint `json:"min_chunk"`
	MaxChunk    uint `json:"max_chunk"`
	AverageBits int  `json:"average_bits"`
	// PackSize is the target size of pack files.
	PackSize    int         `json:"pack_size"`
	Compression Compression `json:"compression"`
}

// Default chunking parameters. Smaller than restic's 512 KiB / 1 MiB /
// 8 MiB because the bulk of a Moodle repository is nightly SQL dumps, where
// changed rows are scattered and smaller chunks confine each change to less
// data (measured in the README), while the index stays small (about 1.3
// blobs per MiB).
const (
	DefaultMinChunk    = 256 << 10
	DefaultMaxChunk    = 4 << 20
	DefaultAverageBits = 19
	DefaultPackSize    = 16 << 20
	// MinPackSize and MaxPackSize bound the configurable pack size: below
	// 1 MiB a repository turns into millions of objects, above 128 MiB packs
	// cost too much memory while they are assembled.
	MinPackSize = 1 << 20
	MaxPackSize = 128 << 20
)

// InitOptions tune a new repository. Zero fields take the defaults.
type InitOptions struct {
	PackSize    int
	Compression Compression
	MinChunk    uint
	MaxChunk    uint
	AverageBits int
}

func newConfig(o InitOptions) (Config, error) {
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return Config{}, fmt.Errorf("choose chunker polynomial: %w", err)
	}
	var id [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Config{}, err
	}
	c := Config{
		Version: FormatVersion, ID: hex.EncodeToString(id[:]), Polynomial: pol,
		MinChunk: DefaultMinChunk, MaxChunk: DefaultMaxChunk, AverageBits: DefaultAverageBits,
		PackSize: DefaultPackSize, Compression: CompressionAuto,
	}
	if o.PackSize != 0 {
		c.PackSize = o.PackSize
	}
	if o.Compression != "" {
		c.Compression = o.Compression
	}
	if o.MinChunk != 0 {
		c.MinChunk = o.MinChunk
	}
	if o.MaxChunk != 0 {
		c.MaxChunk = o.MaxChunk
	}
	if o.AverageBits != 0 {
		c.AverageBits = o.AverageBits
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case c.Version != FormatVersion:
		return fmt.Errorf("repository format version %d is not supported (this mbackup reads version %d)", c.Version, FormatVersion)
	case !c.Polynomial.Irreducible():
		return fmt.Errorf("repository config: chunker polynomial %v is not irreducible", c.Polynomial)
	case c.MinChunk < 64<<10 || c.MaxChunk <= c.MinChunk || c.MaxChunk > 64<<20:
		return fmt.Errorf("repository config: chunk sizes min %d max %d out of range", c.MinChunk, c.MaxChunk)
	case c.AverageBits < 12 || c.AverageBits > 24:
		return fmt.Errorf("repository config: average chunk bits %d out of range 12..24", c.AverageBits)
	case c.PackSize < MinPackSize || c.PackSize > MaxPackSize:
		return fmt.Errorf("pack size %d out of range %d..%d", c.PackSize, MinPackSize, MaxPackSize)
	case !c.Compression.Valid():
		return fmt.Errorf("unknown compression %q (use auto, fastest, better or off)", c.Compression)
	}
	return nil
}
