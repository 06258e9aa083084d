// Package forget applies an environment's keep policy to its snapshots in
// a repository: it decides with package retention and removes the
// snapshot files of the snapshots not kept. Their data stays until prune.
//
// Snapshots pinned by a live session (a restore or staging refresh reading
// them) are always kept.
package forget

import (
	"context"
	"fmt"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/retention"
	"github.com/mbackup/mbackup/snapshot"
)

// Plan is the decision for one environment.
type Plan struct {
	Env    string
	Policy retention.Policy
	Keep   []Keep
	Remove []*snapshot.Snapshot
}

// Keep is a kept snapshot and why.
type Keep struct {
	Snapshot *snapshot.Snapshot
	Reasons  []string
	// Summary is the short form, e.g. "daily 3, weekly 1".
	Summary string
}

// Decide applies p to sns, the snapshots of env. Times are bucketed in loc.
func Decide(env string, sns []*snapshot.Snapshot, p retention.Policy, loc *time.Location, now time.Time, pinned blob.Set) *Plan {
	byID := make(map[string]*snapshot.Snapshot, len(sns))
	in := make([]retention.Snapshot, 0, len(sns))
	for _, s := range sns {
		id := s.ID().String()
		byID[id] = s
		in = append(in, retention.Snapshot{ID: id, Time: s.Time, Tags: s.Tags})
	}
	var pins []string
	for id := range pinned {
		pins = append(pins, id.String())
	}
	keep, remove := retention.Apply(in, p, loc, now, pins...)
	plan := &Plan{Env: env, Policy: p}
	for _, k := range keep {
		plan.Keep = append(plan.Keep, Keep{Snapshot: byID[k.Snapshot.ID], Reasons: k.Reasons, Summary: k.Summary})
	}
	for _, r := range remove {
		plan.Remove = append(plan.Remove, byID[r.ID])
	}
	return plan
}

// Apply removes the snapshot files of plan.Remove. It re-reads the pinned
// snapshots first, so a restore that started after the plan was made is
// still protected.
func Apply(ctx context.Context, repo *engine.Repository, plan *Plan) (removed int, err error) {
	pinned, err := repo.Pinned(ctx)
	if err != nil {
		return 0, fmt.Errorf("forget %s: %w", plan.Env, err)
	}
	for _, s := range plan.Remove {
		if pinned.Has(s.ID()) {
			continue
		}
		if err := repo.RemoveSnapshot(ctx, s.ID()); err != nil {
			return removed, fmt.Errorf("forget %s: %w", plan.Env, err)
		}
		removed++
	}
	return removed, nil
}
