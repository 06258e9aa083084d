package jelasticsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/mbackup/mbackup/restore/jelastic"
)

// maxReadBytes bounds File.Read; the platform's call is for text files.
const maxReadBytes = 16 << 20

// containerPaths maps the Moodle-on-Jelastic layout of a cp node onto the
// environment folder.
func containerPaths() []struct{ prefix, local string } {
	return []struct{ prefix, local string }{
		{"/var/www/webroot/ROOT", "www"},
		{"/var/www/webroot/moodledata", "moodledata"},
	}
}

// resolvePath maps a node path to a file in the environment folder and
// refuses anything outside it and the simulator's own state file.
func (s *Server) resolvePath(env, p string) (string, error) {
	if p == "" {
		return "", apiErr(jelastic.CodeInvalidParameter, "invalid parameter [path]: required")
	}
	clean := path.Clean("/" + p)
	for _, m := range containerPaths() {
		if clean == m.prefix || strings.HasPrefix(clean, m.prefix+"/") {
			clean = "/" + m.local + strings.TrimPrefix(clean, m.prefix)
			break
		}
	}
	rel := strings.TrimPrefix(clean, "/")
	if rel == "" || rel == stateFile {
		return "", apiErr(jelastic.CodeInvalidParameter, "invalid parameter [path]: %q is not a file of the environment", p)
	}
	return filepath.Join(s.envDir(env), filepath.FromSlash(rel)), nil
}

// fileTarget checks the environment and node selection shared by read and
// write and returns the local path.
func (s *Server) fileTarget(p params) (string, error) {
	var target string
	_, err := s.withEnv(p, func(name string, st *envState) (response, error) {
		if err := requireRunning(st); err != nil {
			return nil, err
		}
		if _, err := selectNodes(st, p); err != nil {
			return nil, err
		}
		var err error
		target, err = s.resolvePath(name, p.get("path"))
		return nil, err
	})
	return target, err
}

func (s *Server) fileRead(_ context.Context, p params) (response, error) {
	target, err := s.fileTarget(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, apiErr(jelastic.CodeEntityNotFound, "file [%s] not found", p.get("path"))
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.get("path"), err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, apiErr(jelastic.CodeInvalidParameter, "invalid parameter [path]: %s is a directory", p.get("path"))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxReadBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.get("path"), err)
	}
	if len(data) > maxReadBytes {
		return nil, apiErr(jelastic.CodeInvalidParameter, "file [%s] is larger than %d bytes", p.get("path"), maxReadBytes)
	}
	return response{"body": string(data)}, nil
}

// fileWrite replaces a file atomically (keeping its mode), or appends to it
// with isAppendMode. Missing parent folders are created.
func (s *Server) fileWrite(_ context.Context, p params) (response, error) {
	target, err := s.fileTarget(p)
	if err != nil {
		return nil, err
	}
	body := []byte(p.get("body"))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", p.get("path"), err)
	}
	if p.bool("isAppendMode") {
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", p.get("path"), err)
		}
		_, werr := f.Write(body)
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			return nil, fmt.Errorf("write %s: %w", p.get("path"), err)
		}
		return response{}, nil
	}
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(target); err == nil {
		if fi.IsDir() {
			return nil, apiErr(jelastic.CodeInvalidParameter, "invalid parameter [path]: %s is a directory", p.get("path"))
		}
		perm = fi.Mode().Perm()
	}
	if err := writeFileAtomic(target, body, perm); err != nil {
		return nil, fmt.Errorf("write %s: %w", p.get("path"), err)
	}
	return response{}, nil
}
