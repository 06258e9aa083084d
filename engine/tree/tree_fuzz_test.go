package tree_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/tree"
)

func seedTrees() []*tree.Tree {
	sub := blob.Hash([]byte("subtree"))
	t0 := time.Date(2026, 11, 26, 2, 0, 0, 123456789, time.UTC)
	full := &tree.Tree{Nodes: []*tree.Node{
		{Name: "config.php", Type: tree.File, Mode: 0o640, ModTime: t0, UID: 33, GID: 33, Inode: 42, Size: 3,
			Content: []blob.ID{blob.Hash([]byte("a")), blob.Hash([]byte("b"))}},
		{Name: "filedir", Type: tree.Dir, Mode: 0o2775 | 1<<31, ModTime: t0.In(time.FixedZone("CET", 3600)), Subtree: &sub},
		{Name: "link", Type: tree.Symlink, Mode: 0o777 | 1<<27, ModTime: t0, LinkTarget: "../elsewhere"},
		{Name: "ü ñ é", Type: tree.File, Mode: 0o600, ModTime: t0},
	}}
	return []*tree.Tree{{}, full}
}

// FuzzDecode feeds arbitrary bytes to the tree decoder. Whatever it
// accepts must be safe to restore (every name a single path element) and
// encode canonically: decoding the encoding gives the same encoding.
func FuzzDecode(f *testing.F) {
	for _, tr := range seedTrees() {
		enc, err := tr.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
	}
	f.Add([]byte(`{"nodes":[{"name":"..","type":"dir","subtree":"` + blob.Hash(nil).String() + `"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a/b","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[null]}`))
	f.Add([]byte(`{"nodes":[{"name":"b","type":"file"},{"name":"a","type":"file"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := tree.Decode(data)
		if err != nil {
			return
		}
		for _, n := range tr.Nodes {
			if !tree.ValidName(n.Name) {
				t.Fatalf("accepted unsafe name %q", n.Name)
			}
		}
		enc, err := tr.Encode()
		if err != nil {
			t.Fatalf("a decoded tree does not encode: %v", err)
		}
		again, err := tree.Decode(enc)
		if err != nil {
			t.Fatalf("an encoded tree does not decode: %v\n%s", err, enc)
		}
		enc2, err := again.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not canonical (%v):\n%s\n%s", err, enc, enc2)
		}
		for _, n := range tr.Nodes {
			if tr.Find(n.Name) != n {
				t.Fatalf("Find(%q) does not find the node", n.Name)
			}
		}
	})
}
