package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/snapshot"
)

func (a *app) snapshotsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "snapshots [ENV]",
		Short: "List snapshots, oldest first",
		Args:  nargs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, cfg, err := a.repository(ctx)
			if err != nil {
				return err
			}
			var envs []string
			if len(args) == 1 {
				if _, err := cfg.Env(args[0]); err != nil {
					return err
				}
				envs = args
			}
			sns, err := a.listSnapshots(ctx, repo, envs...)
			if err != nil {
				return err
			}
			if a.json {
				out := make([]snapshotJSON, 0, len(sns))
				for _, s := range sns {
					out = append(out, toSnapshotJSON(s, cfg.Location))
				}
				return a.printJSON(out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tENV\tTAGS\tDATABASE\tFILES\tSIZE\tADDED")
			for _, s := range sns {
				j := toSnapshotJSON(s, cfg.Location)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", j.ShortID, s.Time.In(cfg.Location).Format("2006-01-02 15:04:05"),
					j.Env, strings.Join(j.Tags, ","), formatBytes(j.DBBytes), j.Files, formatBytes(j.FilesBytes), formatBytes(j.AddedBytes))
			}
			if !a.quiet {
				tw.Flush()
				a.printf("%d snapshot(s)\n", len(sns))
			}
			return nil
		},
	}
}

// listSnapshots lists snapshots, warning about (and skipping) damaged
// snapshot files.
func (a *app) listSnapshots(ctx context.Context, repo *engine.Repository, envs ...string) ([]*snapshot.Snapshot, error) {
	sns, err := snapshot.List(ctx, repo, envs...)
	var damaged *engine.DamagedSnapshotError
	if errors.As(err, &damaged) {
		a.warnf("%v (run mbackup check)", err)
		err = nil
	}
	return sns, err
}

// snapshotJSON is one element of `snapshots --json`.
type snapshotJSON struct {
	ID          string   `json:"id"`
	ShortID     string   `json:"short_id"`
	Env         string   `json:"env"`
	Time        string   `json:"time"`
	Tags        []string `json:"tags"`
	Parent      *string  `json:"parent"`
	Hostname    string   `json:"hostname"`
	DBBytes     int64    `json:"db_bytes"`
	Files       int64    `json:"files"`
	FilesBytes  int64    `json:"files_bytes"`
	AddedBytes  int64    `json:"added_bytes"`
	Maintenance bool     `json:"maintenance"`
	Moodle      string   `json:"moodle_release,omitempty"`
	Postgres    string   `json:"postgres_version,omitempty"`
}

func toSnapshotJSON(s *snapshot.Snapshot, loc *time.Location) snapshotJSON {
	j := snapshotJSON{
		ID: s.ID().String(), ShortID: s.ID().Short(), Env: s.Env(), Time: s.Time.In(loc).Format(time.RFC3339),
		Tags: s.Tags, Hostname: s.Hostname, AddedBytes: s.Manifest.AddedBytes, Maintenance: s.Manifest.Maintenance,
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if s.Parent != nil {
		p := s.Parent.String()
		j.Parent = &p
	}
	if d := s.Manifest.Database; d != nil {
		j.DBBytes = d.DumpBytes
		j.Postgres = d.Server.ServerVersion
		if d.Moodle != nil {
			j.Moodle = d.Moodle.Release
		}
	}
	if f := s.Manifest.Files; f != nil {
		j.Files, j.FilesBytes = f.Files, f.Bytes
	}
	return j
}
