package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) repairCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repair index",
		Short: "Rebuild the repository index from the packs",
		Long: `repair index reads the header of every pack and writes new index files
describing all of them, replacing the existing ones, damaged or not. Use it
when check reports an unreadable index file. It deletes no pack, runs
alongside backups, and refuses to run while a prune runs.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "index",
		Short: "Rebuild the index from the packs' headers",
		Args:  nargs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, _, err := a.repository(ctx)
			if err != nil {
				return err
			}
			// A prune lock keeps prunes away while the index is replaced.
			sess, err := repo.StartSession(ctx, "prune", "repair index")
			if err != nil {
				// Starting a session loads the index, which may be what is
				// damaged: repair without one rather than not at all.
				sess = nil
				a.warnf("index unreadable (%v); rebuilding it anyway", err)
			} else {
				defer sess.Close(ctx)
			}
			locks, err := repo.Locks(ctx)
			if err != nil {
				return err
			}
			for _, l := range locks {
				if l.Kind == "prune" && (sess == nil || l.Name != sess.LockName()) && !l.Stale(time.Now()) {
					return fmt.Errorf("a prune is running on %s (pid %d) since %s: repair the index after it ends", l.Hostname, l.PID, l.Started.Format(time.RFC3339))
				}
			}
			bar := a.newProgress("reading pack headers", -1, false)
			st, err := repo.RebuildIndex(ctx, func(done, total int) { bar.set(int64(done), int64(total)) })
			bar.finish()
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(st)
			}
			a.printf("rebuilt the index: %d packs, %d blobs; replaced %d index file(s)\n", st.Packs, st.Blobs, st.Replaced)
			if len(st.DamagedPacks) > 0 {
				for _, p := range st.DamagedPacks {
					a.errorf("pack %s is unreadable and was left out of the index", p.Short())
				}
				a.errorf("run mbackup check to see which snapshots need the unreadable packs")
				return &failed{code: 1}
			}
			return nil
		},
	})
	return cmd
}
