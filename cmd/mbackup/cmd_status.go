package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/cmd/internal/state"
	"github.com/mbackup/mbackup/cmd/internal/status"
)

func (a *app) statusCommand() *cobra.Command {
	var margin time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Fleet health table; exit 1 when any environment is overdue or its last run failed",
		Long: `Show every environment's last successful backup, its age, what it added to
the repository, its number of snapshots and the last error, from the
repository and the run records of mbackup serve (state_dir). The service
need not be running.

An environment is overdue when the activation of its schedule after its last
success passed more than --margin ago (26 h for a daily schedule with the
default margin); a scheduled environment never backed up is overdue too.
Exit status 1 when any environment is overdue or its last run failed.`,
		Args: nargs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			envs, err := a.fleetStatus(cmd.Context(), margin, true)
			if err != nil {
				return err
			}
			if a.json {
				if envs == nil {
					envs = []status.Env{}
				}
				if err := a.printJSON(envs); err != nil {
					return err
				}
			} else if !a.quiet {
				a.printStatusTable(envs)
			}
			var bad []string
			for _, e := range envs {
				switch {
				case e.Failed && e.Overdue:
					bad = append(bad, e.Env+" (failed, overdue)")
				case e.Failed:
					bad = append(bad, e.Env+" (failed)")
				case e.Overdue:
					bad = append(bad, e.Env+" (overdue)")
				}
			}
			if len(bad) > 0 {
				a.errorf("%d of %d environment(s) need attention: %s", len(bad), len(envs), strings.Join(bad, ", "))
				return &failed{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&margin, "margin", status.DefaultMargin, "how long after a missed activation an environment counts as overdue")
	return cmd
}

// fleetStatus computes the status of every environment from the
// repository and the state folder. withRepo false skips the repository
// (Munin's config run needs only the schedules).
func (a *app) fleetStatus(ctx context.Context, margin time.Duration, withRepo bool) ([]status.Env, error) {
	if margin <= 0 {
		return nil, usagef("--margin must be positive")
	}
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	in := status.Input{Config: cfg, Now: time.Now(), Margin: margin}
	if withRepo {
		repo, _, err := a.repository(ctx)
		if err != nil {
			return nil, err
		}
		if in.Snapshots, err = a.listSnapshots(ctx, repo); err != nil {
			return nil, err
		}
		in.Now = time.Now()
	}
	recs, err := state.Reader(cfg.StateDir).All()
	if err != nil {
		a.warnf("%v (those environments show only what the repository says)", err)
	}
	in.Records = recs
	return status.Compute(in), nil
}

func (a *app) printStatusTable(envs []status.Env) {
	loc := a.cfg.Location
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tSTATE\tLAST SUCCESS\tAGE\tADDED\tSNAPSHOTS\tLAST ERROR")
	for _, e := range envs {
		st := "ok"
		switch {
		case e.Failed && e.Overdue:
			st = "FAILED, OVERDUE"
		case e.Failed:
			st = "FAILED"
		case e.Overdue:
			st = "OVERDUE"
		case e.LastResult != nil && *e.LastResult == state.Running:
			st = "running"
		case e.Schedule == "":
			st = "unscheduled"
		}
		last, age, added := "never", "-", "-"
		if e.LastSuccess != nil {
			last = e.LastSuccessTime.In(loc).Format("2006-01-02 15:04")
			age = formatAge(e.Age)
		}
		if e.LastSnapshot != nil {
			added = formatBytes(e.AddedBytes)
		}
		errText := "-"
		if e.LastError != nil {
			errText = shorten(*e.LastError, 120)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Env, st, last, age, added, e.Snapshots, errText)
	}
	tw.Flush()
}

// formatAge renders a duration the way operators read ages: 45s, 12m,
// 5h12m, 3d4h.
func formatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// shorten keeps the start of a long error (what failed) and its end (the
// cause), dropping the middle.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	head := n / 3
	return string(r[:head]) + " … " + string(r[len(r)-(n-head-3):])
}
