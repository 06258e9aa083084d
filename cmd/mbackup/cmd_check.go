package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/engine/checker"
)

func (a *app) checkCommand() *cobra.Command {
	var (
		readData bool
		subset   string
	)
	cmd := &cobra.Command{
		Use:   "check [--read-data | --read-data-subset PCT%|N/T]",
		Short: "Verify the repository; names every damaged snapshot",
		Long: `Verify the repository's structure: every index file and snapshot loads,
every snapshot's trees load, every blob they reference is indexed and every
indexed pack exists. --read-data also downloads every pack and checks each
blob's authentication and hash; --read-data-subset reads a random percentage
of packs (5%) or one of T fixed groups (1/5 .. 5/5 covers all over five runs).
Exit status 1 when damage is found.`,
		Args: nargs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := checker.Options{ReadData: readData}
			if subset != "" {
				if readData {
					return usagef("give either --read-data or --read-data-subset, not both")
				}
				s, err := checker.ParseSubset(subset)
				if err != nil {
					return &usageError{err}
				}
				opts.Subset = &s
			}
			ctx := cmd.Context()
			repo, _, err := a.repository(ctx)
			if err != nil {
				return err
			}
			var bar *progress
			if a.stderrIsTerminal() && (readData || subset != "") {
				bar = a.newProgress("reading packs", -1, false)
				opts.Progress = func(done, total int) { bar.set(int64(done), int64(total)) }
			}
			res, err := checker.Check(ctx, repo, opts)
			bar.finish()
			if err != nil {
				return err
			}
			if a.json {
				if err := a.printJSON(checkJSON(res)); err != nil {
					return err
				}
			} else {
				a.printf("checked %d snapshots, %d trees, %d index files, %d packs, %d blobs\n",
					res.Snapshots, res.Trees, res.IndexFiles, res.Packs, res.Blobs)
				if res.PacksRead > 0 {
					a.printf("read %d packs (%s)\n", res.PacksRead, formatBytes(res.BytesRead))
				}
				for _, n := range res.Notes {
					a.printf("note: %s\n", n)
				}
			}
			if !res.OK() {
				for _, e := range res.Errors {
					a.errorf("%s", e)
				}
				a.errorf("check found damage: %d damaged snapshot(s), %d damaged pack(s)", len(res.DamagedSnapshots), len(res.DamagedPacks))
				return &failed{code: 1}
			}
			a.printf("no errors found\n")
			return nil
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "download and verify every pack")
	cmd.Flags().StringVar(&subset, "read-data-subset", "", "download and verify a subset of packs: PCT% or N/T")
	return cmd
}

type checkOutput struct {
	OK               bool          `json:"ok"`
	Snapshots        int           `json:"snapshots"`
	Trees            int           `json:"trees"`
	IndexFiles       int           `json:"index_files"`
	Packs            int           `json:"packs"`
	Blobs            int           `json:"blobs"`
	PacksRead        int           `json:"packs_read"`
	BytesRead        int64         `json:"bytes_read"`
	Errors           []string      `json:"errors"`
	Notes            []string      `json:"notes"`
	DamagedPacks     []string      `json:"damaged_packs"`
	DamagedSnapshots []damagedJSON `json:"damaged_snapshots"`
}

type damagedJSON struct {
	ID     string `json:"id"`
	Env    string `json:"env,omitempty"`
	Time   string `json:"time,omitempty"`
	Reason string `json:"reason"`
}

func checkJSON(r *checker.Result) checkOutput {
	out := checkOutput{OK: r.OK(), Snapshots: r.Snapshots, Trees: r.Trees, IndexFiles: r.IndexFiles, Packs: r.Packs,
		Blobs: r.Blobs, PacksRead: r.PacksRead, BytesRead: r.BytesRead, Errors: r.Errors, Notes: r.Notes,
		DamagedPacks: []string{}, DamagedSnapshots: []damagedJSON{}}
	if out.Errors == nil {
		out.Errors = []string{}
	}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	for _, p := range r.DamagedPacks {
		out.DamagedPacks = append(out.DamagedPacks, p.String())
	}
	for _, d := range r.DamagedSnapshots {
		j := damagedJSON{ID: d.ID.String(), Env: d.Source, Reason: d.Reason}
		if !d.Time.IsZero() {
			j.Time = d.Time.Format("2006-01-02T15:04:05Z07:00")
		}
		out.DamagedSnapshots = append(out.DamagedSnapshots, j)
	}
	return out
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
