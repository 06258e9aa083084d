package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/tree"
	"github.com/mbackup/mbackup/snapshot"
)

func (a *app) lsCommand() *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "ls ENV SNAPSHOT [PATH]",
		Short: "List files of a snapshot's moodledata",
		Long: `List files of a snapshot's moodledata. SNAPSHOT is an ID (a unique prefix
of at least 4 digits) or "latest". PATH is relative to moodledata; without
it the top level is listed. --recursive lists everything below PATH.`,
		Args: nargs(cobra.RangeArgs(2, 3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, cfg, err := a.repository(ctx)
			if err != nil {
				return err
			}
			if _, err := cfg.Env(args[0]); err != nil {
				return err
			}
			sn, err := a.resolveSnapshot(ctx, repo, args[0], args[1])
			if err != nil {
				return err
			}
			if err := repo.LoadIndex(ctx); err != nil {
				return err
			}
			parts, err := sn.Parts(ctx, repo)
			if err != nil {
				return err
			}
			if parts.Moodledata == nil {
				return fmt.Errorf("snapshot %s of %s has no moodledata", sn.ID().Short(), sn.Env())
			}
			dir := ""
			if len(args) == 3 {
				dir = strings.Trim(path.Clean("/"+args[2]), "/")
			}
			t, err := descend(ctx, repo, *parts.Moodledata, dir)
			if err != nil {
				return err
			}
			var entries []lsEntry
			var walk func(t *tree.Tree, prefix string) error
			walk = func(t *tree.Tree, prefix string) error {
				for _, n := range t.Nodes {
					p := path.Join(prefix, n.Name)
					entries = append(entries, lsEntry{Path: p, Type: string(n.Type), Mode: n.Mode.String(), Size: n.Size,
						MTime: n.ModTime.In(cfg.Location).Format(time.RFC3339), LinkTarget: n.LinkTarget})
					if recursive && n.Type == tree.Dir {
						sub, err := repo.LoadTree(ctx, *n.Subtree)
						if err != nil {
							return err
						}
						if err := walk(sub, p); err != nil {
							return err
						}
					}
				}
				return nil
			}
			if err := walk(t, dir); err != nil {
				return err
			}
			if a.json {
				if entries == nil {
					entries = []lsEntry{}
				}
				return a.printJSON(entries)
			}
			for _, e := range entries {
				name := e.Path
				if e.LinkTarget != "" {
					name += " -> " + e.LinkTarget
				}
				mt, _ := time.Parse(time.RFC3339, e.MTime)
				a.printf("%s %10d %s %s\n", e.Mode, e.Size, mt.Format("2006-01-02 15:04"), name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "list everything below PATH")
	return cmd
}

type lsEntry struct {
	Path       string `json:"path"`
	Type       string `json:"type"`
	Mode       string `json:"mode"`
	Size       uint64 `json:"size"`
	MTime      string `json:"mtime"`
	LinkTarget string `json:"link_target,omitempty"`
}

// descend returns the tree of folder dir below root.
func descend(ctx context.Context, repo *engine.Repository, root blob.ID, dir string) (*tree.Tree, error) {
	t, err := repo.LoadTree(ctx, root)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return t, nil
	}
	for _, name := range strings.Split(dir, "/") {
		n := t.Find(name)
		if n == nil || n.Type != tree.Dir {
			return nil, usagef("no folder %q in the snapshot's moodledata", dir)
		}
		if t, err = repo.LoadTree(ctx, *n.Subtree); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// resolveSnapshot finds a snapshot of env by "latest" or an ID prefix.
func (a *app) resolveSnapshot(ctx context.Context, repo *engine.Repository, env, ref string) (*snapshot.Snapshot, error) {
	if ref == "latest" {
		sn, err := snapshot.Latest(ctx, repo, env)
		if err != nil {
			return nil, err
		}
		if sn == nil {
			return nil, fmt.Errorf("%s has no snapshots yet (run mbackup backup %s)", env, env)
		}
		return sn, nil
	}
	id, err := repo.FindSnapshot(ctx, ref)
	if err != nil {
		// A wrong or ambiguous ID is the operator's to fix; a storage
		// failure is not.
		if backend.IsNotExist(err) || errors.Is(err, engine.ErrAmbiguous) || len(ref) < 4 {
			return nil, &usageError{err}
		}
		return nil, err
	}
	sn, err := snapshot.Load(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	if sn.Env() != env {
		return nil, usagef("snapshot %s belongs to %s, not %s", id.Short(), sn.Env(), env)
	}
	return sn, nil
}
