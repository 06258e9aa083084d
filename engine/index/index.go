package index

import (
	"encoding/binary"

	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/pack"
)

// Location says where a blob is stored.
type Location struct {
	Pack       blob.ID
	Type       blob.Type
	Offset     uint32
	Length     uint32
	RawLength  uint32
	Compressed bool
}

// Blob returns the location as the pack's view of the blob.
func (l Location) Blob(id blob.ID) pack.Blob {
	return pack.Blob{Type: l.Type, ID: id, Offset: l.Offset, Length: l.Length, RawLength: l.RawLength, Compressed: l.Compressed}
}

const (
	pageBits = 12
	pageSize = 1 << pageBits

	// The top two bits of entry.pack hold the flags.
	packMask       = 1<<30 - 1
	flagTree       = 1 << 31
	flagCompressed = 1 << 30
	// MaxPacks is the number of packs an Index can address.
	MaxPacks = packMask
)

type entry struct {
	id     blob.ID
	pack   uint32 // pack number | flags
	offset uint32
	length uint32
	raw    uint32
}

// Index is an in-memory map from blob ID to location. It is not safe for
// concurrent use; the repository guards it.
type Index struct {
	pages   [][]entry
	n       int
	buckets []uint32 // 0 = empty, else entry number + 1
	mask    uint64

	packs   []blob.ID
	packNum map[blob.ID]uint32
}

// New returns an empty index.
func New() *Index {
	return &Index{packNum: make(map[blob.ID]uint32)}
}

// Len returns the number of blobs.
func (x *Index) Len() int { return x.n }

// PackCount returns the number of packs.
func (x *Index) PackCount() int { return len(x.packs) }

// Packs returns the IDs of all packs with at least one blob.
func (x *Index) Packs() []blob.ID { return append([]blob.ID(nil), x.packs...) }

// HasPack reports whether the index knows the pack.
func (x *Index) HasPack(id blob.ID) bool { _, ok := x.packNum[id]; return ok }

func (x *Index) entry(i uint32) *entry { return &x.pages[i>>pageBits][i&(pageSize-1)] }

func hashOf(id blob.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// find returns the bucket slot for id and whether it holds id.
func (x *Index) find(id blob.ID) (uint64, bool) {
	if len(x.buckets) == 0 {
		return 0, false
	}
	for i := hashOf(id) & x.mask; ; i = (i + 1) & x.mask {
		b := x.buckets[i]
		if b == 0 {
			return i, false
		}
		if x.entry(b-1).id == id {
			return i, true
		}
	}
}

// Has reports whether the index holds id.
func (x *Index) Has(id blob.ID) bool {
	_, ok := x.find(id)
	return ok
}

// Lookup returns the location of id.
func (x *Index) Lookup(id blob.ID) (Location, bool) {
	slot, ok := x.find(id)
	if !ok {
		return Location{}, false
	}
	return x.location(x.entry(x.buckets[slot] - 1)), true
}

func (x *Index) location(e *entry) Location {
	l := Location{
		Pack: x.packs[e.pack&packMask], Type: blob.Data,
		Offset: e.offset, Length: e.length, RawLength: e.raw,
		Compressed: e.pack&flagCompressed != 0,
	}
	if e.pack&flagTree != 0 {
		l.Type = blob.Tree
	}
	return l
}

// Add records that b is stored in packID. If the blob is already indexed
// the first location is kept and Add reports false.
func (x *Index) Add(packID blob.ID, b pack.Blob) bool {
	if x.n+1 > len(x.buckets)*3/4 {
		x.grow()
	}
	slot, ok := x.find(b.ID)
	if ok {
		return false
	}
	num, known := x.packNum[packID]
	if !known {
		num = uint32(len(x.packs))
		x.packs = append(x.packs, packID)
		x.packNum[packID] = num
	}
	p := num
	if b.Type == blob.Tree {
		p |= flagTree
	}
	if b.Compressed {
		p |= flagCompressed
	}
	i := uint32(x.n)
	if int(i>>pageBits) == len(x.pages) {
		x.pages = append(x.pages, make([]entry, pageSize))
	}
	*x.entry(i) = entry{id: b.ID, pack: p, offset: b.Offset, length: b.Length, raw: b.RawLength}
	x.n++
	x.buckets[slot] = i + 1
	return true
}

func (x *Index) grow() {
	size := 64
	if len(x.buckets) > 0 {
		size = len(x.buckets) * 2
	}
	x.buckets = make([]uint32, size)
	x.mask = uint64(size - 1)
	for i := 0; i < x.n; i++ {
		id := x.entry(uint32(i)).id
		j := hashOf(id) & x.mask
		for x.buckets[j] != 0 {
			j = (j + 1) & x.mask
		}
		x.buckets[j] = uint32(i) + 1
	}
}

// Each calls fn for every blob, in insertion order, until fn returns false.
func (x *Index) Each(fn func(id blob.ID, loc Location) bool) {
	for i := 0; i < x.n; i++ {
		e := x.entry(uint32(i))
		if !fn(e.id, x.location(e)) {
			return
		}
	}
}

// MemoryBytes returns the bytes the index holds for its blobs and packs,
// the figure reported as "bytes per blob" in the README.
func (x *Index) MemoryBytes() int {
	const entryBytes = blob.IDSize + 16
	packBytes := len(x.packs) * (blob.IDSize + blob.IDSize + 4 + 16) // slice + map entry, approximately
	return len(x.pages)*pageSize*entryBytes + len(x.buckets)*4 + packBytes
}
