package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/retention"
	"github.com/mbackup/mbackup/retention/forget"
)

func (a *app) forgetCommand() *cobra.Command {
	var all, dryRun bool
	cmd := &cobra.Command{
		Use:   "forget [ENV... | --all] [--dry-run]",
		Short: "Apply the retention policies, saying why each kept snapshot is kept",
		Long: `Apply each environment's retention policy (restic's --keep-* semantics,
buckets in the configured timezone): print every kept snapshot with the
rules that keep it and remove the others. Snapshots in use by a running
restore or staging refresh are kept. The data of removed snapshots is
freed by prune.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := a.config()
			if err != nil {
				return err
			}
			envs, err := selectEnvs(cfg, args, all, nil)
			if err != nil {
				return err
			}
			repo, _, err := a.repository(ctx)
			if err != nil {
				return err
			}
			pinned, err := repo.Pinned(ctx)
			if err != nil {
				return err
			}
			var out []forgetJSON
			removed := 0
			for _, e := range envs {
				p, err := policyOf(cfg, e)
				if err != nil {
					return err
				}
				sns, err := a.listSnapshots(ctx, repo, e.Name)
				if err != nil {
					return err
				}
				plan := forget.Decide(e.Name, sns, p, cfg.Location, time.Now(), pinned)
				a.printPlan(plan, cfg.Location, dryRun)
				out = append(out, toForgetJSON(plan, cfg.Location))
				if dryRun {
					continue
				}
				n, err := forget.Apply(ctx, repo, plan)
				removed += n
				if err != nil {
					return err
				}
			}
			if a.json {
				return a.printJSON(out)
			}
			if !dryRun {
				a.printf("removed %d snapshot(s); run mbackup prune to free their data\n", removed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "apply the policy of every configured environment")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be kept and removed, remove nothing")
	return cmd
}

// policyOf maps the configured retention block onto retention.Policy.
func policyOf(cfg *config.Config, e *config.Environment) (retention.Policy, error) {
	r := e.Retention
	p := retention.Policy{Last: r.Last, Hourly: r.Hourly, Daily: r.Daily, Weekly: r.Weekly, Monthly: r.Monthly, Yearly: r.Yearly, Tags: r.Tags}
	if r.Within != "" {
		d, err := retention.ParseDuration(r.Within)
		if err != nil {
			return p, &config.Error{File: cfg.File, Line: e.Line, Key: "environments." + e.Name + ".retention.within", Msg: err.Error()}
		}
		p.Within = d
	}
	return p, p.Validate()
}

func (a *app) printPlan(plan *forget.Plan, loc *time.Location, dryRun bool) {
	verb := "remove"
	if dryRun {
		verb = "would remove"
	}
	a.printf("%s: policy %s: keep %d, %s %d\n", plan.Env, plan.Policy, len(plan.Keep), verb, len(plan.Remove))
	for _, k := range plan.Keep {
		a.printf("  keep   %s  %s  %s\n", k.Snapshot.ID().Short(), k.Snapshot.Time.In(loc).Format("2006-01-02 15:04:05"), k.Summary)
	}
	for _, s := range plan.Remove {
		a.printf("  %s %s  %s\n", fmt.Sprintf("%-6s", "remove"), s.ID().Short(), s.Time.In(loc).Format("2006-01-02 15:04:05"))
	}
}

type forgetJSON struct {
	Env    string           `json:"env"`
	Policy string           `json:"policy"`
	Keep   []forgetSnapJSON `json:"keep"`
	Remove []forgetSnapJSON `json:"remove"`
}

type forgetSnapJSON struct {
	ID      string   `json:"id"`
	Time    string   `json:"time"`
	Reasons []string `json:"reasons,omitempty"`
}

func toForgetJSON(plan *forget.Plan, loc *time.Location) forgetJSON {
	j := forgetJSON{Env: plan.Env, Policy: plan.Policy.String(), Keep: []forgetSnapJSON{}, Remove: []forgetSnapJSON{}}
	for _, k := range plan.Keep {
		j.Keep = append(j.Keep, forgetSnapJSON{ID: k.Snapshot.ID().String(), Time: k.Snapshot.Time.In(loc).Format(time.RFC3339), Reasons: k.Reasons})
	}
	for _, s := range plan.Remove {
		j.Remove = append(j.Remove, forgetSnapJSON{ID: s.ID().String(), Time: s.Time.In(loc).Format(time.RFC3339)})
	}
	return j
}
