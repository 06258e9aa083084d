package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// EnvVar is the environment variable that names the configuration file when
// --config is not given.
const EnvVar = "MBACKUP_CONFIG"

// DefaultCandidates returns the files tried, in order, when neither --config
// nor $MBACKUP_CONFIG names one: ./mbackup.yaml, then
// /etc/mbackup/mbackup.yaml.
func DefaultCandidates() []string {
	return []string{"mbackup.yaml", "/etc/mbackup/mbackup.yaml"}
}

// Finder implements the lookup order of the configuration file. The zero
// Finder uses the process environment and DefaultCandidates.
type Finder struct {
	// LookupEnv reads an environment variable; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Candidates are tried in order when neither the flag nor EnvVar is set;
	// nil means DefaultCandidates().
	Candidates []string
}

// Find returns the configuration file to load: flagPath when not empty, else
// $MBACKUP_CONFIG when set, else the first candidate that exists. A file
// named by the flag or the variable must exist; it is never silently
// replaced by a candidate. Not finding a file is an *Error.
func (f Finder) Find(flagPath string) (string, error) {
	if flagPath != "" {
		return flagPath, mustExist(flagPath, "--config")
	}
	lookup := f.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if p, ok := lookup(EnvVar); ok && p != "" {
		return p, mustExist(p, "$"+EnvVar)
	}
	cands := f.Candidates
	if cands == nil {
		cands = DefaultCandidates()
	}
	for _, c := range cands {
		fi, err := os.Stat(c)
		switch {
		case err == nil && !fi.IsDir():
			return c, nil
		case err == nil:
			return "", &Error{File: c, Msg: "is a directory, not a configuration file", Fix: "remove it or pass --config PATH"}
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("look for configuration file %s: %w", c, err)
		}
	}
	return "", &Error{
		Msg: fmt.Sprintf("no configuration file found (looked for %s)", strings.Join(cands, ", ")),
		Fix: "pass --config PATH or set " + EnvVar,
	}
}

// Find is Finder{}.Find: the lookup order with the process environment and
// the default candidates.
func Find(flagPath string) (string, error) { return Finder{}.Find(flagPath) }

func mustExist(path, origin string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{File: path, Msg: "configuration file (from " + origin + ") does not exist", Fix: "check the path", Err: err}
	case err != nil:
		return fmt.Errorf("stat configuration file %s: %w", path, err)
	case fi.IsDir():
		return &Error{File: path, Msg: "configuration file (from " + origin + ") is a directory", Fix: "name the YAML file itself"}
	}
	return nil
}
