package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/engine/prune"
)

func (a *app) pruneCommand() *cobra.Command {
	var (
		dryRun    bool
		maxUnused float64
		wait      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Delete data no snapshot references; safe while backups run",
		Long: `Delete data that no snapshot references: packs with no referenced blob,
packs left by interrupted backups, and (after copying what is still
referenced) packs whose unreferenced share exceeds --max-unused.

Backups never wait for prune. Data that running backups might still use is
marked, not deleted, and is deleted by the next prune once they have ended
(or by this one, with --wait). A prune interrupted at any point leaves a
valid repository and the next prune finishes its work.`,
		Args: nargs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, cfg, err := a.repository(ctx)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("max-unused") {
				maxUnused = cfg.Prune.MaxUnused
			}
			bar := a.newProgress("prune", -1, false)
			st, err := prune.Run(ctx, repo, prune.Options{
				DryRun: dryRun, MaxUnused: maxUnused, Wait: wait, Log: a.log,
				Progress: func(phase string) { bar.describe(phase) },
			})
			bar.finish()
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(st)
			}
			a.printf("%d snapshots; %d packs: %d used, %d partly used, %d unused, %d not indexed\n",
				st.Snapshots, st.Packs, st.PacksUsed, st.PacksPartlyUsed, st.PacksUnused, st.PacksUnindexed)
			a.printf("referenced %s, unreferenced %s\n", formatBytes(st.UsedBytes), formatBytes(st.UnusedBytes))
			if dryRun {
				a.printf("would repack %d pack(s) and delete %d pack(s) (%s)\n", st.Repacked, st.MarkedPacks, formatBytes(st.MarkedBytes))
				return nil
			}
			if st.Repacked > 0 {
				a.printf("repacked %d pack(s) into %d\n", st.Repacked, st.NewPacks)
			}
			if st.Recovered > 0 {
				a.printf("kept %d marked pack(s) that new snapshots need\n", st.Recovered)
			}
			a.printf("deleted %d pack(s), freed %s, %d object(s) deleted from storage\n", st.DeletedPacks, formatBytes(st.FreedBytes), st.DeletedObjects)
			if st.RemovedLocks > 0 {
				a.printf("removed %d stale lock(s) of sessions that ended or died\n", st.RemovedLocks)
			}
			if st.PendingTombstones > 0 {
				a.printf("%d mark(s) wait for running writers before deletion (next prune): %v\n", st.PendingTombstones, st.WaitingFor)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	cmd.Flags().Float64Var(&maxUnused, "max-unused", 10, "repack packs with more than this percentage of unreferenced data (default from config prune.max_unused)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait this long for running backups so that their marks can be swept in this run")
	return cmd
}
