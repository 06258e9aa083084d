// Package fstest builds and compares folder trees in tests of the engine.
package fstest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Entry describes one path for comparison.
type Entry struct {
	Mode    fs.FileMode
	ModTime time.Time
	Digest  string // file content hash or link target
}

// Snapshot returns every entry below root, keyed by slash path, skipping
// paths for which skip returns true.
func Snapshot(root string, skip func(rel string) bool) (map[string]Entry, error) {
	out := make(map[string]Entry)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Mode: fi.Mode()}
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			e.Digest = hex.EncodeToString(sum[:])
			e.ModTime = fi.ModTime()
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Digest = "-> " + t
		case fi.IsDir():
			e.ModTime = fi.ModTime()
		}
		out[rel] = e
		return nil
	})
	return out, err
}

// Diff lists the differences between two snapshots, empty when equal.
func Diff(want, got map[string]Entry) []string {
	var d []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			d = append(d, "missing "+k)
		case g.Mode != w.Mode:
			d = append(d, fmt.Sprintf("%s: mode %v, want %v", k, g.Mode, w.Mode))
		case g.Digest != w.Digest:
			d = append(d, fmt.Sprintf("%s: content differs", k))
		case !g.ModTime.Equal(w.ModTime):
			d = append(d, fmt.Sprintf("%s: mtime %v, want %v", k, g.ModTime, w.ModTime))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, "unexpected "+k)
		}
	}
	sort.Strings(d)
	return d
}

// Build creates a varied tree below root: nested folders, small and large
// files (random and text), an empty file, symlinks, unusual modes.
func Build(root string, seed uint64, files int) error {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	base := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	dirs := []string{"", "a", "a/b", "a/b/c", "filedir/01/02", "filedir/ff/ee", "lang/en_local", "empty"}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	for i := range files {
		dir := dirs[rng.IntN(len(dirs)-1)]
		name := filepath.Join(root, dir, fmt.Sprintf("f%04d.dat", i))
		var size int
		switch rng.IntN(10) {
		case 0:
			size = 0
		case 1:
			size = 600<<10 + rng.IntN(3<<20)
		default:
			size = rng.IntN(64 << 10)
		}
		data := make([]byte, size)
		if rng.IntN(2) == 0 {
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
		} else {
			line := []byte(strings.Repeat(fmt.Sprintf("row %d;", rng.IntN(100)), 8) + "\n")
			for j := range data {
				data[j] = line[j%len(line)]
			}
		}
		mode := fs.FileMode(0o644)
		switch rng.IntN(10) {
		case 0, 1:
			mode = 0o600
		case 2:
			mode = 0o444 // read-only: a restore must finish writing before it applies the mode
		}
		if err := os.WriteFile(name, data, mode); err != nil {
			return err
		}
		mt := base.Add(time.Duration(rng.IntN(1e6)) * time.Second)
		if err := os.Chtimes(name, mt, mt); err != nil {
			return err
		}
	}
	if err := os.Symlink("en_local", filepath.Join(root, "lang/current")); err != nil {
		return err
	}
	if err := os.Symlink("/nonexistent/target", filepath.Join(root, "a/dangling")); err != nil {
		return err
	}
	return os.Chmod(filepath.Join(root, "a/b"), 0o750)
}
