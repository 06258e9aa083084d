package service

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/cmd/internal/state"
	"github.com/mbackup/mbackup/snapshot"
)

type emptyInventory struct{}

func (emptyInventory) Snapshots(context.Context) ([]*snapshot.Snapshot, error) { return nil, nil }
func (emptyInventory) Size(context.Context) (int64, error)                     { return 0, nil }

// The example configuration in scripts/ loads and schedules what its
// comments say.
func TestExampleConfig(t *testing.T) {
	env := map[string]string{"MBACKUP_HOOK_TOKEN": "t0ken"}
	cfg, err := config.Load(filepath.Join("..", "..", "..", "scripts", "mbackup.example.yaml"), config.SkipPathChecks(),
		config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	noop := func(context.Context) (string, error) { return "", nil }
	svc, err := New(Options{Config: cfg, Store: store, Inventory: emptyInventory{}, Clock: newFakeClock(at(t, "2026-11-27 12:00:00")),
		Jobs: Jobs{
			Backup:  func(context.Context, *config.Environment) (BackupResult, error) { return BackupResult{}, nil },
			Prune:   noop,
			Check:   func(context.Context, float64) (string, error) { return "", nil },
			Staging: func(context.Context, *config.Environment) (string, error) { return "", nil },
		}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range svc.jobList(cfg) {
		names = append(names, j.Name)
	}
	if got := fmt.Sprint(names); got != "[backup client-x staging client-x backup client-y prune check]" {
		t.Errorf("jobs of the example: %s", got)
	}
	if cfg.Listen != "127.0.0.1:9187" || cfg.Concurrency != 2 || cfg.Retry.Attempts != 3 || len(cfg.Notify.On) != 2 {
		t.Errorf("example settings: listen %s concurrency %d retry %+v notify %v", cfg.Listen, cfg.Concurrency, cfg.Retry, cfg.Notify.On)
	}
}
