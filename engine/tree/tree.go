// Package tree defines how folders are described in a repository.
//
// A Tree lists the entries of one folder, sorted by name; a folder entry
// points to its own tree by ID, a file entry lists the IDs of the blobs
// that make up its content. Trees are stored as tree blobs in their
// deterministic JSON encoding, so an unchanged folder encodes to the same
// bytes, gets the same ID and is stored once however many snapshots
// contain it.
//
// Decode validates what it reads: entry names are single path elements
// (no "/", no "." or ".."), so a damaged or hostile tree can never make a
// restore write outside its target folder.
package tree

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/mbackup/mbackup/engine/blob"
)

// Type is the kind of a tree entry.
type Type string

// Entry kinds.
const (
	File    Type = "file"
	Dir     Type = "dir"
	Symlink Type = "symlink"
)

// Node is one folder entry.
type Node struct {
	Name    string      `json:"name"`
	Type    Type        `json:"type"`
	Mode    fs.FileMode `json:"mode"`
	ModTime time.Time   `json:"mtime"`
	UID     uint32      `json:"uid"`
	GID     uint32      `json:"gid"`
	Inode   uint64      `json:"inode,omitempty"`
	Size    uint64      `json:"size,omitempty"`
	// LinkTarget is a symlink's target, stored as is.
	LinkTarget string `json:"linktarget,omitempty"`
	// Content lists a file's blobs in order.
	Content []blob.ID `json:"content,omitempty"`
	// Subtree is a folder's tree.
	Subtree *blob.ID `json:"subtree,omitempty"`
}

// Tree is the listing of one folder.
type Tree struct {
	Nodes []*Node `json:"nodes"`
}

// Sort orders the nodes by name, as Encode requires.
func (t *Tree) Sort() {
	slices.SortFunc(t.Nodes, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })
}

// Find returns the node called name, or nil.
func (t *Tree) Find(name string) *Node {
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n *Node, name string) int { return strings.Compare(n.Name, name) })
	if !ok {
		return nil
	}
	return t.Nodes[i]
}

// Encode returns the tree's canonical encoding; the nodes must be sorted.
func (t *Tree) Encode() ([]byte, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if t.Nodes == nil {
		t.Nodes = []*Node{}
	}
	return json.Marshal(t)
}

// ErrFormat says that a tree is malformed.
var ErrFormat = errors.New("malformed tree")

// Decode parses and validates an encoded tree.
func Decode(data []byte) (*Tree, error) {
	var t Tree
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// ValidName reports whether name is a safe single path element.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

func (t *Tree) validate() error {
	for i, n := range t.Nodes {
		if n == nil {
			return fmt.Errorf("%w: empty entry", ErrFormat)
		}
		if !ValidName(n.Name) {
			return fmt.Errorf("%w: invalid entry name %q", ErrFormat, n.Name)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return fmt.Errorf("%w: entries not sorted or duplicated at %q", ErrFormat, n.Name)
		}
		switch n.Type {
		case File:
			if n.Subtree != nil || n.LinkTarget != "" {
				return fmt.Errorf("%w: file %q has folder or link fields", ErrFormat, n.Name)
			}
		case Dir:
			if n.Subtree == nil || len(n.Content) > 0 {
				return fmt.Errorf("%w: folder %q has no subtree", ErrFormat, n.Name)
			}
		case Symlink:
			if n.Subtree != nil || len(n.Content) > 0 {
				return fmt.Errorf("%w: symlink %q has content", ErrFormat, n.Name)
			}
		default:
			return fmt.Errorf("%w: entry %q has unknown type %q", ErrFormat, n.Name, n.Type)
		}
	}
	return nil
}
