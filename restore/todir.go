package restore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/restorer"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

// ToDir writes a snapshot into a folder: dir/moodledata/, dir/db.sql (a
// plain SQL script that psql loads into an empty database) and
// dir/config.php when the snapshot has one. Nothing live is touched.
func ToDir(ctx context.Context, repo *engine.Repository, sn *snapshot.Snapshot, dir string, opts Options) (*Report, error) {
	opts.defaults()
	start := opts.Now()
	rep := &Report{Snapshot: sn.ID().String(), Target: dir, DryRun: opts.DryRun}
	sess, err := repo.StartSession(ctx, "restore", dir, sn.ID())
	if err != nil {
		return nil, err
	}
	defer sess.Close(context.WithoutCancel(ctx))
	parts, err := sn.Parts(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("restore %s into %s: %w", sn.Env(), dir, err)
	}
	if !opts.DryRun {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	// db.sql and moodledata are written at the same time: pg_restore is its
	// own process, and the file restore has its own workers.
	g, gctx := errgroup.WithContext(ctx)
	if !opts.FilesOnly && parts.Dump != nil {
		rep.Database = &DBPlan{Target: filepath.Join(dir, "db.sql"), DumpBytes: int64(parts.Dump.Size), Jobs: 1}
		rep.FetchBytes += int64(parts.Dump.Size)
		if !opts.DryRun {
			g.Go(func() error {
				opts.progress(Progress{Phase: "database", BytesTotal: int64(parts.Dump.Size)})
				err := writeAtomic(filepath.Join(dir, "db.sql"), 0o600, func(w io.Writer) error {
					rd := repo.NewContentReader(gctx, parts.Dump.Content, opts.Fetchers)
					defer rd.Close()
					in := &errReader{r: rd}
					err := postgres.ToSQL(gctx, opts.PgRestore, in, w)
					if err != nil && in.err != nil {
						// pg_restore only saw its input end early; the
						// repository's error is the cause.
						return fmt.Errorf("read dump from the repository: %w", in.err)
					}
					return err
				})
				if err != nil {
					return fmt.Errorf("restore %s into %s: write db.sql: %w", sn.Env(), dir, err)
				}
				return nil
			})
		}
	}
	if !opts.DBOnly && parts.Moodledata != nil {
		g.Go(func() error {
			st, err := restorer.Restore(gctx, repo, *parts.Moodledata, filepath.Join(dir, "moodledata"), restorer.Options{
				Delete: true, Verify: true, DryRun: opts.DryRun, Workers: opts.Fetchers,
				Progress: func(p restorer.Progress) {
					opts.progress(Progress{Phase: "files", BytesDone: p.BytesDone, BytesTotal: p.BytesTotal})
				},
			})
			if err != nil {
				return fmt.Errorf("restore %s into %s: write moodledata: %w", sn.Env(), dir, err)
			}
			rep.Files = &st.Plan
			rep.FilesVerified = st.Verified
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if rep.Files != nil {
		rep.FetchBytes += rep.Files.FetchBytes
	}
	if !opts.DBOnly && parts.ConfigPHP != nil && !opts.DryRun {
		data, err := snapshot.ReadFile(ctx, repo, parts.ConfigPHP)
		if err != nil {
			return nil, err
		}
		if err := writeAtomic(filepath.Join(dir, "config.php"), parts.ConfigPHP.Mode.Perm(), func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		}); err != nil {
			return nil, fmt.Errorf("write config.php: %w", err)
		}
	}
	rep.Duration = opts.Now().Sub(start)
	return rep, nil
}

// writeAtomic writes a file through a temporary name, fsync and rename.
func writeAtomic(path string, mode os.FileMode, fill func(io.Writer) error) (err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(b[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
