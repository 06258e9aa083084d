package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/pack"
)

// File is the content of one stored index file.
type File struct {
	// Supersedes lists index files whose content this one replaces.
	Supersedes []blob.ID
	Packs      []PackBlobs
}

// PackBlobs lists the blobs of one pack.
type PackBlobs struct {
	ID    blob.ID
	Blobs []pack.Blob
}

// BlobCount returns the number of blob entries in the file.
func (f *File) BlobCount() int {
	n := 0
	for _, p := range f.Packs {
		n += len(p.Blobs)
	}
	return n
}

const fileVersion = 1

// Encode returns the binary form of f.
func (f *File) Encode() []byte {
	buf := make([]byte, 0, 16+len(f.Supersedes)*blob.IDSize+f.BlobCount()*(blob.IDSize+12)+len(f.Packs)*(blob.IDSize+4))
	buf = append(buf, fileVersion)
	buf = binary.AppendUvarint(buf, uint64(len(f.Supersedes)))
	for _, id := range f.Supersedes {
		buf = append(buf, id[:]...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(f.Packs)))
	for _, p := range f.Packs {
		buf = append(buf, p.ID[:]...)
		buf = binary.AppendUvarint(buf, uint64(len(p.Blobs)))
		for _, b := range p.Blobs {
			var flags byte
			if b.Type == blob.Tree {
				flags |= 1
			}
			if b.Compressed {
				flags |= 2
			}
			buf = append(buf, flags)
			buf = append(buf, b.ID[:]...)
			buf = binary.AppendUvarint(buf, uint64(b.Offset))
			buf = binary.AppendUvarint(buf, uint64(b.Length))
			buf = binary.AppendUvarint(buf, uint64(b.RawLength))
		}
	}
	return buf
}

// ErrFormat says that an index file is malformed.
var ErrFormat = errors.New("malformed index file")

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrFormat, msg)
	}
}

func (d *decoder) uvarint(max uint64, what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("truncated " + what)
		return 0
	}
	if v > max {
		d.fail(fmt.Sprintf("%s %d out of range", what, v))
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) id(what string) (id blob.ID) {
	if d.err != nil {
		return id
	}
	if len(d.buf) < blob.IDSize {
		d.fail("truncated " + what)
		return id
	}
	copy(id[:], d.buf)
	d.buf = d.buf[blob.IDSize:]
	return id
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 1 {
		d.fail("truncated " + what)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// count reads a count of items that each take at least minSize bytes, so a
// damaged count cannot make the decoder allocate more than the input
// justifies.
func (d *decoder) count(minSize int, what string) int {
	return int(d.uvarint(uint64(len(d.buf)/minSize), what))
}

// Decode parses the binary form produced by Encode.
func Decode(data []byte) (*File, error) {
	d := &decoder{buf: data}
	if v := d.byte("version"); d.err == nil && v != fileVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrFormat, v)
	}
	f := &File{}
	n := d.count(blob.IDSize, "supersedes count")
	for i := 0; i < n && d.err == nil; i++ {
		f.Supersedes = append(f.Supersedes, d.id("superseded ID"))
	}
	np := d.count(blob.IDSize+1, "pack count")
	if d.err == nil {
		f.Packs = make([]PackBlobs, 0, np)
	}
	for i := 0; i < np && d.err == nil; i++ {
		p := PackBlobs{ID: d.id("pack ID")}
		nb := d.count(1+blob.IDSize+3, "blob count")
		if d.err == nil {
			p.Blobs = make([]pack.Blob, 0, nb)
		}
		for j := 0; j < nb && d.err == nil; j++ {
			flags := d.byte("blob flags")
			if flags&^3 != 0 {
				d.fail(fmt.Sprintf("unknown blob flags %#x", flags))
			}
			b := pack.Blob{Type: blob.Data, Compressed: flags&2 != 0}
			if flags&1 != 0 {
				b.Type = blob.Tree
			}
			b.ID = d.id("blob ID")
			b.Offset = uint32(d.uvarint(1<<32-1, "offset"))
			b.Length = uint32(d.uvarint(1<<32-1, "length"))
			b.RawLength = uint32(d.uvarint(1<<32-1, "raw length"))
			p.Blobs = append(p.Blobs, b)
		}
		f.Packs = append(f.Packs, p)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.buf)))
	}
	if d.err != nil {
		return nil, d.err
	}
	return f, nil
}
