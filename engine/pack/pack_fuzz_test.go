package pack_test

import (
	"encoding/binary"
	"testing"

	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/pack"
)

// fuzzKey is fixed so that corpus entries sealed in one run still
// authenticate in the next.
func fuzzKey() *crypto.Key {
	k := &crypto.Key{}
	for i := range k.Encrypt {
		k.Encrypt[i] = byte(i + 1)
		k.ID[i] = byte(200 - i)
	}
	return k
}

// validPack builds a pack of n blobs of growing size.
func validPack(t testing.TB, key *crypto.Key, n int) []byte {
	w := pack.NewWriter(key, 1<<16)
	for i := 0; i < n; i++ {
		plain := make([]byte, 100*i+1)
		for j := range plain {
			plain[j] = byte(i * j)
		}
		id := key.BlobID(plain)
		sealed, err := key.SealBlob(nil, plain, id)
		if err != nil {
			t.Fatal(err)
		}
		typ := blob.Data
		if i%2 == 1 {
			typ = blob.Tree
		}
		w.Add(typ, id, sealed, len(plain), i%3 == 2)
	}
	data, _ := w.Finalize()
	return data
}

// checkBlobs asserts what every accepted header must satisfy: blobs lie
// back to back from offset 0, each at least a nonce and tag long, and all
// of them before the header.
func checkBlobs(t *testing.T, blobs []pack.Blob, dataEnd int64) {
	t.Helper()
	var off int64
	for _, b := range blobs {
		if int64(b.Offset) != off {
			t.Fatalf("blob %s at offset %d, want %d", b.ID.Short(), b.Offset, off)
		}
		if b.Length < crypto.Overhead {
			t.Fatalf("blob %s has length %d below the seal overhead", b.ID.Short(), b.Length)
		}
		if b.Type != blob.Data && b.Type != blob.Tree {
			t.Fatalf("blob %s has type %v", b.ID.Short(), b.Type)
		}
		off += int64(b.Length)
	}
	if off > dataEnd {
		t.Fatalf("blobs end at %d, past the data end %d", off, dataEnd)
	}
}

// FuzzParseHeader feeds whole packs, as read from storage, to the header
// parser with the repository key: damaged or hostile packs must be
// rejected with an error, never a panic or an out-of-range blob.
func FuzzParseHeader(f *testing.F) {
	key := fuzzKey()
	for _, n := range []int{0, 1, 3, 8} {
		p := validPack(f, key, n)
		f.Add(p)
		f.Add(p[:len(p)-1])
		f.Add(p[len(p)/2:])
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		blobs, err := pack.ParseHeader(key, data)
		if err != nil {
			return
		}
		hlen := int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
		checkBlobs(t, blobs, int64(len(data))-4-hlen)
	})
}

// FuzzHeaderPlaintext seals fuzzed header plaintext with the real key, so
// the decoder behind the authentication (entry layout, flags, lengths) is
// explored too, not only the length checks in front of it.
func FuzzHeaderPlaintext(f *testing.F) {
	key := fuzzKey()
	ad := []byte("pack header")
	for _, n := range []int{0, 1, 3, 8} {
		p := validPack(f, key, n)
		hlen := int(binary.LittleEndian.Uint32(p[len(p)-4:]))
		hdr, err := key.Open(nil, p[len(p)-4-hlen:len(p)-4], ad)
		if err != nil {
			f.Fatalf("seed pack of %d blobs: the header does not open: %v", n, err)
		}
		f.Add(hdr, uint32(len(p)-4-hlen))
	}
	f.Add([]byte{1}, uint32(0))
	f.Add([]byte{2}, uint32(10))
	f.Fuzz(func(t *testing.T, hdr []byte, dataLen uint32) {
		dataLen %= 1 << 20
		data := make([]byte, dataLen, int(dataLen)+len(hdr)+crypto.Overhead+4)
		data = key.Seal(data, hdr, ad)
		data = binary.LittleEndian.AppendUint32(data, uint32(len(hdr)+crypto.Overhead))
		blobs, err := pack.ParseHeader(key, data)
		if err != nil {
			return
		}
		checkBlobs(t, blobs, int64(dataLen))
		if len(hdr) < 1 || len(blobs) != (len(hdr)-1)/(1+blob.IDSize+8) {
			t.Fatalf("%d blobs from a header of %d bytes", len(blobs), len(hdr))
		}
	})
}
