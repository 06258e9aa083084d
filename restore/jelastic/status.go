package jelastic

import "strconv"

// Status is an environment's env.status code.
type Status int

// Environment status codes, from the platform's ENV_STATUS_TYPE_* enum and
// its dashboard labels (5, 1001 and 1002 exist only as labels).
const (
	StatusUnknown      Status = 0
	StatusRunning      Status = 1
	StatusStopped      Status = 2 // ENV_STATUS_TYPE_DOWN
	StatusLaunching    Status = 3
	StatusSleeping     Status = 4
	StatusSuspended    Status = 5 // ENV_STATUS_TYPE_UNKNOWN in the API, "Suspended" in the dashboard
	StatusCreating     Status = 6
	StatusCloning      Status = 7
	StatusNotExists    Status = 8
	StatusExporting    Status = 9
	StatusMigrating    Status = 10
	StatusBroken       Status = 11
	StatusUpdating     Status = 12 // "Redeploying..."
	StatusStopping     Status = 13
	StatusGoingToSleep Status = 14
	StatusRestoring    Status = 15
	StatusDeleting     Status = 1001
	StatusRefreshing   Status = 1002
)

// String returns a lower-case label such as "running", or "status(N)" for a
// code this package does not know.
func (s Status) String() string {
	switch s {
	case StatusUnknown:
		return "unknown"
	case StatusRunning:
		return "running"
	case StatusStopped:
		return "stopped"
	case StatusLaunching:
		return "launching"
	case StatusSleeping:
		return "sleeping"
	case StatusSuspended:
		return "suspended"
	case StatusCreating:
		return "creating"
	case StatusCloning:
		return "cloning"
	case StatusNotExists:
		return "not-exists"
	case StatusExporting:
		return "exporting"
	case StatusMigrating:
		return "migrating"
	case StatusBroken:
		return "broken"
	case StatusUpdating:
		return "updating"
	case StatusStopping:
		return "stopping"
	case StatusGoingToSleep:
		return "going-to-sleep"
	case StatusRestoring:
		return "restoring"
	case StatusDeleting:
		return "deleting"
	case StatusRefreshing:
		return "refreshing"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}
