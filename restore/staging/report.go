package staging

import (
	"time"

	"github.com/mbackup/mbackup/restore"
)

// Report statuses.
const (
	StatusPlanned = "planned" // a dry run: nothing was changed
	StatusRunning = "running" // only while the run is under way
	StatusOK      = "ok"      // the copy is refreshed, sanitized and open
	StatusFailed  = "failed"  // refused or failed before the copy was changed
	StatusBroken  = "broken"  // failed after the copy was changed: do not use it
)

// Step statuses.
const (
	StepPlanned = "planned"
	StepDone    = "done"
	StepFailed  = "failed"
)

// Report says what a refresh or side restore did (or, dry, would do).
type Report struct {
	Kind       string `json:"kind"`                    // KindRefresh or KindSideRestore
	Env        string `json:"env"`                     // production's name in the configuration
	Production string `json:"production_jelastic_env"` // cloned from; never written
	Copy       string `json:"jelastic_env"`            // the staging or clone environment
	Snapshot   string `json:"snapshot"`                // full id
	Database   string `json:"database"`                // the copy's, password removed
	Moodledata string `json:"moodledata"`
	Config     string `json:"config_php,omitempty"`
	WWWRoot    string `json:"wwwroot,omitempty"`
	DryRun     bool   `json:"dry_run"`

	Status     string `json:"status"`                // StatusOK, StatusBroken, ...
	FailedStep string `json:"failed_step,omitempty"` // the step that failed
	Error      string `json:"error,omitempty"`
	// BrokenMarker is the climaintenance.html that keeps a broken copy
	// closed and says why.
	BrokenMarker string `json:"broken_marker,omitempty"`

	// Steps in order, each with the changes it made (or plans).
	Steps    []Step          `json:"steps"`
	Restore  *restore.Report `json:"restore,omitempty"`
	Duration time.Duration   `json:"duration_ns"`
}

// Step is one step of a run.
type Step struct {
	Name    string   `json:"name"`
	Status  string   `json:"status"`
	Changes []string `json:"changes,omitempty"`
}

// Changes returns every change of every step, in order.
func (r *Report) Changes() []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Changes...)
	}
	return out
}
