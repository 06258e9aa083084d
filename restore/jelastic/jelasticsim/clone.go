package jelasticsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mbackup/mbackup/restore/jelastic"
)

// cloneEnv copies srcEnvName's folder and database to dstEnvName and
// returns the clone, running. Like the platform it does not touch the
// application's configuration: www/config.php still names the source
// database (hazard H1).
//
// Order: database first, then the folder into a hidden work folder that is
// renamed into place last, so a half clone is never visible as an
// environment; on failure whatever was created is removed.
func (s *Server) cloneEnv(ctx context.Context, p params) (resp response, err error) {
	src, err := p.require("srcEnvName")
	if err != nil {
		return nil, err
	}
	dst, err := p.require("dstEnvName")
	if err != nil {
		return nil, err
	}
	if !validName(src) {
		return nil, notExist(src)
	}
	if !validName(dst) || len(dst) > jelastic.MaxEnvNameLen {
		return nil, apiErr(jelastic.CodeInvalidParameter,
			"invalid parameter [dstEnvName]: %q must be 1 to %d letters, digits or inner hyphens", dst, jelastic.MaxEnvNameLen)
	}
	if src == dst {
		return nil, apiErr(jelastic.CodeInvalidParameter, "invalid parameter [dstEnvName]: same as the source")
	}
	unlock := s.lockEnvs(src, dst)
	defer unlock()
	if !s.envExists(src) {
		return nil, notExist(src)
	}
	if _, err := os.Lstat(s.envDir(dst)); err == nil {
		return nil, apiErr(jelastic.CodeNotPermitted, "operation not permitted: environment [%s] already exists", dst)
	}
	if _, err := s.loadState(src); err != nil {
		return nil, err
	}

	err = s.cloneDatabase(ctx, dbName(src), dbName(dst))
	if errors.Is(err, errDatabaseExists) {
		return nil, apiErr(jelastic.CodeNotPermitted, "operation not permitted: database [%s] for environment [%s] already exists", dbName(dst), dst)
	}
	if err != nil {
		return nil, fmt.Errorf("clone env %s to %s: %w", src, dst, err)
	}
	work := ""
	defer func() {
		if err == nil {
			return
		}
		// Clean up with a fresh context: the request's may be what failed.
		cleanup := context.WithoutCancel(ctx)
		if work != "" {
			if rerr := os.RemoveAll(work); rerr != nil {
				s.log.Warn("jelastic-sim: remove half clone folder", "folder", work, "error", rerr)
			}
		}
		if derr := s.dropDatabase(cleanup, dbName(dst)); derr != nil {
			s.log.Warn("jelastic-sim: drop half clone database", "database", dbName(dst), "error", derr)
		}
	}()

	suffix, err := randomHex(4)
	if err != nil {
		return nil, err
	}
	work = filepath.Join(s.cfg.Root, clonePrefix+dst+"-"+suffix)
	skipState := func(rel string) bool { return rel == stateFile }
	if err = copyTree(ctx, s.envDir(src), work, skipState); err != nil {
		return nil, fmt.Errorf("clone env %s to %s: copy folder: %w", src, dst, err)
	}
	st, err := s.newState(dst)
	if err != nil {
		return nil, err
	}
	if err = s.saveState(work, st); err != nil {
		return nil, err
	}
	if err = os.Rename(work, s.envDir(dst)); err != nil {
		return nil, fmt.Errorf("clone env %s to %s: %w", src, dst, err)
	}
	work = s.envDir(dst) // a failure from here on removes the clone itself
	if err = syncDir(s.cfg.Root); err != nil {
		return nil, fmt.Errorf("clone env %s to %s: %w", src, dst, err)
	}
	return s.envInfo(st), nil
}
