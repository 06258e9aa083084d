package jelasticsim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mbackup/mbackup/restore/jelastic"
)

// withEnv runs fn on an existing environment's state under its lock.
func (s *Server) withEnv(p params, fn func(name string, st *envState) (response, error)) (response, error) {
	name, err := p.require("envName")
	if err != nil {
		return nil, err
	}
	if !validName(name) {
		return nil, notExist(name)
	}
	unlock := s.lockEnvs(name)
	defer unlock()
	if !s.envExists(name) {
		return nil, notExist(name)
	}
	st, err := s.loadState(name)
	if err != nil {
		return nil, err
	}
	return fn(name, st)
}

func (s *Server) getEnvInfo(_ context.Context, p params) (response, error) {
	return s.withEnv(p, func(_ string, st *envState) (response, error) {
		return s.envInfo(st), nil
	})
}

func (s *Server) getEnvs(context.Context, params) (response, error) {
	names, err := s.listEnvs()
	if err != nil {
		return nil, err
	}
	infos := make([]response, 0, len(names))
	for _, name := range names {
		unlock := s.lockEnvs(name)
		var st *envState
		if s.envExists(name) { // it may have gone since listing
			st, err = s.loadState(name)
		}
		unlock()
		if err != nil {
			return nil, err
		}
		if st != nil {
			info := s.envInfo(st)
			info["result"] = jelastic.CodeOK
			infos = append(infos, info)
		}
	}
	return response{"infos": infos}, nil
}

// statusChanger handles startenv, stopenv and sleepenv: synchronous and
// idempotent, like the platform's calls as far as clients can tell.
func (s *Server) statusChanger(to jelastic.Status) func(context.Context, params) (response, error) {
	return func(_ context.Context, p params) (response, error) {
		return s.withEnv(p, func(_ string, st *envState) (response, error) {
			if st.Status != int(to) {
				st.Status = int(to)
				if err := s.saveState(s.envDir(st.EnvName), st); err != nil {
					return nil, err
				}
			}
			return response{}, nil
		})
	}
}

// requireRunning refuses work on nodes of an environment that is not up.
func requireRunning(st *envState) error {
	if st.Status != int(jelastic.StatusRunning) {
		s := jelastic.Status(st.Status)
		return apiErr(jelastic.CodeNotPermitted, "operation not permitted: environment [%s] is not running (status %d, %s)", st.EnvName, st.Status, s)
	}
	return nil
}

// selectNodes picks the nodes a request addresses by nodeId / nodeid,
// nodeGroup or nodeType; none of them given means all nodes.
func selectNodes(st *envState, p params) ([]nodeState, error) {
	idText, group, typ := p.get("nodeId"), p.get("nodeGroup"), p.get("nodeType")
	id := 0
	if idText != "" {
		var err error
		if id, err = strconv.Atoi(idText); err != nil {
			return nil, apiErr(jelastic.CodeInvalidParameter, "invalid parameter [nodeId]: %q is not a number", idText)
		}
	}
	var out []nodeState
	for _, n := range st.Nodes {
		if (id == 0 || n.ID == id) && (group == "" || n.NodeGroup == group) && (typ == "" || n.NodeType == typ) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, apiErr(jelastic.CodeEntityNotFound, "no node matches nodeId [%s] nodeGroup [%s] nodeType [%s] in environment [%s]", idText, group, typ, st.EnvName)
	}
	return out, nil
}

func (s *Server) restartNodes(_ context.Context, p params) (response, error) {
	return s.withEnv(p, func(_ string, st *envState) (response, error) {
		if err := requireRunning(st); err != nil {
			return nil, err
		}
		targets, err := selectNodes(st, p)
		if err != nil {
			return nil, err
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		for i := range st.Nodes {
			for _, t := range targets {
				if st.Nodes[i].ID == t.ID {
					st.Nodes[i].Restarts++
					st.Nodes[i].LastRestart = now
				}
			}
		}
		if err := s.saveState(s.envDir(st.EnvName), st); err != nil {
			return nil, err
		}
		return response{}, nil
	})
}

// deleteEnv drops the database, then removes the folder. The password must
// be the environment name or the configured account password.
func (s *Server) deleteEnv(ctx context.Context, p params) (response, error) {
	return s.withEnv(p, func(name string, _ *envState) (response, error) {
		pw := p.get("password")
		if pw != name && (s.cfg.Password == "" || pw != s.cfg.Password) {
			return nil, apiErr(jelastic.CodeInvalidPassword, "invalid password: confirm the deletion with the environment name or the account password")
		}
		if err := s.dropDatabase(ctx, dbName(name)); err != nil {
			return nil, fmt.Errorf("delete env %s: %w", name, err)
		}
		// Rename first so the environment vanishes at once, even if
		// removing a large tree takes a while or fails half-way.
		suffix, err := randomHex(4)
		if err != nil {
			return nil, err
		}
		trash := filepath.Join(s.cfg.Root, deletePrefix+name+"-"+suffix)
		if err := os.Rename(s.envDir(name), trash); err != nil {
			return nil, fmt.Errorf("delete env %s: %w", name, err)
		}
		if err := syncDir(s.cfg.Root); err != nil {
			return nil, fmt.Errorf("delete env %s: %w", name, err)
		}
		if err := os.RemoveAll(trash); err != nil {
			s.log.Warn("jelastic-sim: leftover of deleted environment", "env", name, "folder", trash, "error", err)
		}
		return response{}, nil
	})
}
