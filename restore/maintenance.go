package restore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// maintenanceFile is Moodle's CLI maintenance flag (moodle-ops §2.2): while
// it exists every web request gets a 503 and cron does not run.
const maintenanceFile = "climaintenance.html"

const maintenancePage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Maintenance</title></head>
<body><h1>This site is being restored</h1><p>Please come back in a few minutes.</p></body></html>
`

type maintenance struct {
	path       string
	wasPresent bool
	previous   []byte
}

// enableMaintenance writes the flag, remembering what was there.
func enableMaintenance(moodledata string) (*maintenance, error) {
	m := &maintenance{path: filepath.Join(moodledata, maintenanceFile)}
	prev, err := os.ReadFile(m.path)
	switch {
	case err == nil:
		m.wasPresent, m.previous = true, prev
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if err := os.MkdirAll(moodledata, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(m.path, []byte(maintenancePage), 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

// off ends maintenance mode after a successful restore, whether or not it
// was on before (a snapshot taken in maintenance mode must not leave the
// site in it).
func (m *maintenance) off() error {
	if err := os.Remove(m.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// restore puts back the state found before a failed restore.
func (m *maintenance) restore() error {
	if m.wasPresent {
		return os.WriteFile(m.path, m.previous, 0o644)
	}
	return m.off()
}
