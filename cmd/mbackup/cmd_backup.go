package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

func (a *app) backupCommand() *cobra.Command {
	var (
		all     bool
		tags    []string
		timeStr string
	)
	cmd := &cobra.Command{
		Use:   "backup ENV... | --all | --tag TAG",
		Short: "Snapshot environments now",
		Long: `Snapshot environments now: dump each database with pg_dump (streamed,
never written to a temporary file), then copy moodledata (files unchanged
since the previous snapshot are not read again) and config.php. Several
environments run in parallel, up to the configured concurrency. A failed
environment commits nothing; the others go on. Exit status 1 when any
environment failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := a.config()
			if err != nil {
				return err
			}
			envs, err := selectEnvs(cfg, args, all, tags)
			if err != nil {
				return err
			}
			var at time.Time
			if timeStr != "" {
				if at, err = time.Parse(time.RFC3339, timeStr); err != nil {
					return usagef("--time %q: want RFC 3339, like 2026-11-28T02:00:00+01:00", timeStr)
				}
			}
			open := a.openRepository(ctx)
			results := a.runBackups(ctx, open, cfg, envs, at)
			if _, err := open(ctx); err != nil {
				return err // each backup stopped before writing anything
			}
			if a.json {
				if err := a.printJSON(results); err != nil {
					return err
				}
			}
			nfail := 0
			for _, r := range results {
				if !r.OK {
					nfail++
				}
			}
			if nfail > 0 {
				a.errorf("%d of %d environment(s) failed; nothing was committed for them", nfail, len(results))
				return &failed{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "back up every configured environment")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "back up the environments with this tag (repeatable)")
	cmd.Flags().StringVar(&timeStr, "time", "", "record this snapshot time (RFC 3339) instead of now, for imports and tests")
	return cmd
}

// selectEnvs resolves the command line's choice of environments.
func selectEnvs(cfg *config.Config, names []string, all bool, tags []string) ([]*config.Environment, error) {
	n := 0
	for _, b := range []bool{len(names) > 0, all, len(tags) > 0} {
		if b {
			n++
		}
	}
	if n != 1 {
		return nil, usagef("name environments, or give --all, or --tag TAG (exactly one of these)")
	}
	var envs []*config.Environment
	switch {
	case all:
		envs = cfg.Environments()
	case len(tags) > 0:
		seen := map[string]bool{}
		for _, t := range tags {
			for _, e := range cfg.ByTag(t) {
				if !seen[e.Name] {
					seen[e.Name] = true
					envs = append(envs, e)
				}
			}
		}
		if len(envs) == 0 {
			return nil, usagef("no environment has tag %s", strings.Join(tags, " or "))
		}
	default:
		for _, name := range names {
			e, err := cfg.Env(name)
			if err != nil {
				return nil, err
			}
			envs = append(envs, e)
		}
	}
	sort.Slice(envs, func(i, j int) bool { return envs[i].Name < envs[j].Name })
	return envs, nil
}

// sourceOf maps a configured environment to what the snapshot package
// backs up.
func sourceOf(e *config.Environment) (snapshot.Source, error) {
	pw, err := e.DatabasePassword()
	if err != nil {
		return snapshot.Source{}, err
	}
	return snapshot.Source{
		Env:        e.Name,
		DB:         &postgres.DB{URL: e.Database.ConnString(), Password: pw.Value()},
		Moodledata: e.Moodledata,
		ConfigPHP:  e.ConfigPHP,
		Exclude:    e.Exclude,
		Tags:       e.Tags,
	}, nil
}

// backupResult is one element of `backup --json`.
type backupResult struct {
	Env             string  `json:"env"`
	Snapshot        *string `json:"snapshot"`
	OK              bool    `json:"ok"`
	Error           *string `json:"error"`
	DurationSeconds float64 `json:"duration_seconds"`
	AddedBytes      int64   `json:"added_bytes"`
	ReadBytes       int64   `json:"read_bytes"`
	Warnings        int     `json:"warnings"`
}

// runBackups backs up envs with bounded parallelism and prints a summary
// line per environment.
func (a *app) runBackups(ctx context.Context, open func(context.Context) (*engine.Repository, error), cfg *config.Config, envs []*config.Environment, at time.Time) []backupResult {
	results := make([]backupResult, len(envs))
	sem := make(chan struct{}, max(1, cfg.Concurrency))
	bars := a.newBackupBars(envs)
	var wg sync.WaitGroup
	for i, e := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = a.backupOne(ctx, open, cfg, e, at, bars)
		}()
	}
	wg.Wait()
	bars.finish()
	return results
}

func (a *app) backupOne(ctx context.Context, open func(context.Context) (*engine.Repository, error), cfg *config.Config, e *config.Environment, at time.Time, bars *backupBars) backupResult {
	start := time.Now()
	res := backupResult{Env: e.Name}
	fail := func(err error) backupResult {
		msg := oneLine(err.Error())
		res.Error = &msg
		res.DurationSeconds = time.Since(start).Seconds()
		a.errorf("%s: %s", e.Name, msg)
		return res
	}
	src, err := sourceOf(e)
	if err != nil {
		return fail(err)
	}
	r, err := snapshot.BackupTo(ctx, open, src, snapshot.Options{
		Time:     at,
		Version:  version,
		PgDump:   e.PgDump(),
		Warn:     func(msg string) { a.warnf("%s: %s", e.Name, msg) },
		Progress: bars.update,
	})
	if err != nil {
		if _, openErr := open(ctx); openErr != nil {
			return res // the command reports the repository's error, once
		}
		return fail(explainDBAuth(err, e.Name, cfg.File))
	}
	m := r.Snapshot.Manifest
	id := r.Snapshot.ID().String()
	res.Snapshot, res.OK = &id, true
	res.DurationSeconds = r.Duration.Seconds()
	res.AddedBytes = m.AddedBytes
	res.Warnings = m.Warnings
	var read, total int64
	if m.Database != nil {
		read += m.Database.DumpBytes
		total += m.Database.DumpBytes
	}
	if m.Files != nil {
		read += m.Files.ReadBytes
		total += m.Files.Bytes
	}
	res.ReadBytes = read
	ratio := "-"
	if m.AddedBytes > 0 {
		ratio = fmt.Sprintf("%.1fx", float64(total)/float64(m.AddedBytes))
	}
	a.printf("%s: snapshot %s: %s (%s read), %s added, dedup+compression %s, %s\n",
		e.Name, id[:8], formatBytes(total), formatBytes(read), formatBytes(m.AddedBytes), ratio, r.Duration.Round(10*time.Millisecond))
	return res
}

// backupBars shows one progress bar for all running backups.
type backupBars struct {
	p     *progress
	mu    sync.Mutex
	state map[string]snapshot.Progress
}

func (a *app) newBackupBars(envs []*config.Environment) *backupBars {
	desc := envs[0].Name
	if len(envs) > 1 {
		desc = fmt.Sprintf("%d environments", len(envs))
	}
	return &backupBars{p: a.newProgress(desc, -1, true), state: make(map[string]snapshot.Progress)}
}

func (b *backupBars) update(p snapshot.Progress) {
	if b.p == nil {
		return
	}
	b.mu.Lock()
	b.state[p.Env] = p
	var done, est int64
	for _, s := range b.state {
		done += s.Bytes
		est += s.Estimate
	}
	b.mu.Unlock()
	b.p.set(done, est)
}

func (b *backupBars) finish() {
	if b != nil {
		b.p.finish()
	}
}
