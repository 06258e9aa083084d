package postgres

import "io"

// ScanArchive runs the archive scanner over a whole archive, for tests
// against the installed pg_dump.
func ScanArchive(r io.Reader) (dumpVersion string, counts map[string]int64, err error) {
	s := newArchiveScanner()
	if _, err := io.Copy(s, r); err != nil {
		return "", nil, err
	}
	return s.result()
}
