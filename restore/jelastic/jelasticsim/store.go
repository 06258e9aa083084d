package jelasticsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mbackup/mbackup/restore/jelastic"
)

// stateFile is the per-environment state, inside the environment folder.
const stateFile = ".jelastic-sim.json"

// Hidden work folders under Root: a clone being built and an environment
// being deleted. Discovery ignores them; startup removes leftovers.
const (
	clonePrefix  = ".clone-"
	deletePrefix = ".deleting-"
)

const (
	maxNameLen  = 64
	firstNodeID = 10001
	timeLayout  = "2006-01-02 15:04:05"
)

// envState is what the simulator remembers about an environment.
type envState struct {
	EnvName   string      `json:"envName"`
	AppID     string      `json:"appid"`
	Status    int         `json:"status"`
	CreatedOn string      `json:"createdOn"`
	Nodes     []nodeState `json:"nodes"`
}

type nodeState struct {
	ID          int    `json:"id"`
	NodeGroup   string `json:"nodeGroup"`
	NodeType    string `json:"nodeType"`
	Restarts    int    `json:"restarts"`
	LastRestart string `json:"lastRestart,omitempty"` // RFC 3339, UTC
}

// validName reports whether name may be an environment (and so a folder
// and a database) name: it rules out path tricks and hidden entries.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' && i > 0) {
			return false
		}
	}
	return true
}

func (s *Server) envDir(name string) string { return filepath.Join(s.cfg.Root, name) }

// envExists reports whether ROOT/name is an environment folder.
func (s *Server) envExists(name string) bool {
	if !validName(name) {
		return false
	}
	fi, err := os.Stat(s.envDir(name))
	return err == nil && fi.IsDir()
}

func notExist(name string) error {
	return apiErr(jelastic.CodeEnvNotExist, "application [%s] not exist", name)
}

// listEnvs returns the environment names under Root, sorted.
func (s *Server) listEnvs() ([]string, error) {
	entries, err := os.ReadDir(s.cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("list environments in %s: %w", s.cfg.Root, err)
	}
	var names []string
	for _, e := range entries {
		if validName(e.Name()) && s.envExists(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// lockEnvs locks the named environments in a fixed order and returns the
// unlock function.
func (s *Server) lockEnvs(names ...string) func() {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	s.mu.Lock()
	locks := make([]*sync.Mutex, len(names))
	for i, n := range names {
		l, ok := s.envLocks[n]
		if !ok {
			l = &sync.Mutex{}
			s.envLocks[n] = l
		}
		locks[i] = l
	}
	s.mu.Unlock()
	for _, l := range locks {
		l.Lock()
	}
	return func() {
		for i := len(locks) - 1; i >= 0; i-- {
			locks[i].Unlock()
		}
	}
}

// loadState reads an existing environment's state, creating it when the
// folder is new (or its state file unreadable or copied from another
// environment). The caller holds the environment's lock.
func (s *Server) loadState(name string) (*envState, error) {
	path := filepath.Join(s.envDir(name), stateFile)
	data, err := os.ReadFile(path)
	if err == nil {
		var st envState
		if json.Unmarshal(data, &st) == nil && st.EnvName == name && len(st.Nodes) > 0 && st.AppID != "" {
			return &st, nil
		}
		s.log.Warn("jelastic-sim: replacing unusable state file", "env", name)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read state of env %s: %w", name, err)
	}
	st, err := s.newState(name)
	if err != nil {
		return nil, err
	}
	if err := s.saveState(s.envDir(name), st); err != nil {
		return nil, err
	}
	return st, nil
}

// newState makes a running environment with fresh ids and no restarts.
func (s *Server) newState(name string) (*envState, error) {
	ids, err := s.allocIDs(2)
	if err != nil {
		return nil, err
	}
	appid, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	return &envState{
		EnvName:   name,
		AppID:     appid,
		Status:    int(jelastic.StatusRunning),
		CreatedOn: time.Now().Format(timeLayout),
		Nodes: []nodeState{
			{ID: ids[0], NodeGroup: "cp", NodeType: "apache2"},
			{ID: ids[1], NodeGroup: "sqldb", NodeType: "postgres15"},
		},
	}, nil
}

// saveState writes dir/.jelastic-sim.json atomically.
func (s *Server) saveState(dir string, st *envState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, stateFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save state of env %s: %w", st.EnvName, err)
	}
	return nil
}

// allocIDs returns n node ids no environment under Root uses and this
// process has not handed out before.
func (s *Server) allocIDs(n int) ([]int, error) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	highest := max(s.lastID, firstNodeID-1)
	entries, err := os.ReadDir(s.cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("allocate node ids: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		// Clones in progress hold ids too.
		data, err := os.ReadFile(filepath.Join(s.cfg.Root, e.Name(), stateFile))
		if err != nil {
			continue
		}
		var st envState
		if json.Unmarshal(data, &st) != nil {
			continue
		}
		for _, nd := range st.Nodes {
			highest = max(highest, nd.ID)
		}
	}
	ids := make([]int, n)
	for i := range ids {
		highest++
		ids[i] = highest
	}
	s.lastID = highest
	return ids, nil
}

// startup removes leftovers of interrupted clones and deletions and gives
// every environment folder a state file.
func (s *Server) startup() error {
	entries, err := os.ReadDir(s.cfg.Root)
	if err != nil {
		return fmt.Errorf("jelasticsim: read root folder: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, clonePrefix) && !strings.HasPrefix(name, deletePrefix) {
			continue
		}
		// An interrupted clone may also have left its database behind;
		// it is not dropped blindly, as an operator may own it.
		s.log.Warn("jelastic-sim: removing leftover work folder", "folder", name)
		if err := os.RemoveAll(filepath.Join(s.cfg.Root, name)); err != nil {
			return fmt.Errorf("jelasticsim: remove leftover %s: %w", name, err)
		}
	}
	names, err := s.listEnvs()
	if err != nil {
		return fmt.Errorf("jelasticsim: %w", err)
	}
	for _, name := range names {
		unlock := s.lockEnvs(name)
		_, err := s.loadState(name)
		unlock()
		if err != nil {
			return fmt.Errorf("jelasticsim: %w", err)
		}
	}
	s.log.Info("jelastic-sim: environments discovered", "root", s.cfg.Root, "count", len(names))
	return nil
}

// writeFileAtomic writes path via a synced temporary file and a rename,
// then syncs the folder so the rename itself is durable.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
