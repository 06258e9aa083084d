package index_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/index"
	"github.com/mbackup/mbackup/engine/pack"
)

func id(b byte) blob.ID {
	var i blob.ID
	for k := range i {
		i[k] = b + byte(k)
	}
	return i
}

// seedFiles are index files as the engine and prune write them.
func seedFiles() []*index.File {
	one := &index.File{Packs: []index.PackBlobs{{ID: id(1), Blobs: []pack.Blob{
		{Type: blob.Data, ID: id(2), Offset: 0, Length: 1028, RawLength: 1000},
	}}}}
	many := &index.File{Supersedes: []blob.ID{id(9), id(10)}}
	for p := 0; p < 3; p++ {
		pb := index.PackBlobs{ID: id(byte(20 + p))}
		var off uint32
		for b := 0; b < 4; b++ {
			bl := pack.Blob{Type: blob.Data, ID: id(byte(40 + 4*p + b)), Offset: off, Length: uint32(300 + 1000*b), RawLength: uint32(5000 * b), Compressed: b%2 == 0}
			if b == 3 {
				bl.Type = blob.Tree
			}
			off += bl.Length
			pb.Blobs = append(pb.Blobs, bl)
		}
		many.Packs = append(many.Packs, pb)
	}
	return []*index.File{{}, one, many}
}

// FuzzDecode feeds arbitrary bytes to the index decoder (what a damaged
// index file holds after authentication, or a bug writes): it must fail
// with an error or return a file that encodes back to an equivalent one.
func FuzzDecode(f *testing.F) {
	for _, file := range seedFiles() {
		enc := file.Encode()
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
		f.Add(append(bytes.Clone(enc), 0))
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := index.Decode(data)
		if err != nil {
			return
		}
		enc := file.Encode()
		if len(enc) > len(data) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(enc))
		}
		again, err := index.Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(file), normalize(again)) {
			t.Fatalf("round trip changed the file:\n%+v\n%+v", file, again)
		}
	})
}

// normalize maps empty and nil slices to one form for comparison.
func normalize(f *index.File) *index.File {
	out := &index.File{Supersedes: append([]blob.ID{}, f.Supersedes...)}
	for _, p := range f.Packs {
		out.Packs = append(out.Packs, index.PackBlobs{ID: p.ID, Blobs: append([]pack.Blob{}, p.Blobs...)})
	}
	return out
}

// The seeds themselves round-trip exactly.
func TestSeedFilesRoundTrip(t *testing.T) {
	for i, file := range seedFiles() {
		got, err := index.Decode(file.Encode())
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalize(file), normalize(got)) {
			t.Errorf("seed %d changed: %+v", i, got)
		}
	}
}
