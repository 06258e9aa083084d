package staging

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// maintenanceFile is Moodle's CLI maintenance flag: while it exists every
// web request gets a 503 with the file as its page, and cron does not run.
const maintenanceFile = "climaintenance.html"

// DefaultRemoteConfigPHP is config.php on a Jelastic Moodle cp node (the
// jelastic-jps/moodle layout), used when a site has no local config_php.
const DefaultRemoteConfigPHP = "/var/www/webroot/ROOT/config.php"

// cacheDirs are emptied on the copy: they hold production's (or the old
// copy's) cached state, and sessions/ production's PHP sessions.
var cacheDirs = []string{"cache", "localcache", "sessions"}

func maintenancePage(title, body string) []byte {
	return []byte("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.EscapeString(title) +
		"</title></head>\n<body><h1>" + html.EscapeString(title) + "</h1><p>" + html.EscapeString(body) + "</p></body></html>\n")
}

func refreshingPage(kind string, at time.Time) []byte {
	return maintenancePage("This copy is being refreshed",
		fmt.Sprintf("mbackup started a %s at %s. The copy is closed until it has been sanitized.", kind, at.UTC().Format(time.RFC3339)))
}

func brokenPage(kind, step string, at time.Time) []byte {
	again := "Run the refresh again (with --reclone if needed); it removes this page when it succeeds."
	if kind == KindSideRestore {
		again = "Delete this environment and run the side restore again."
	}
	return maintenancePage("This copy is broken: do not test on it",
		fmt.Sprintf("The %s by mbackup failed at step %q at %s and may have left this copy half-refreshed: its data may be partly production's and not sanitized. %s",
			kind, step, at.UTC().Format(time.RFC3339), again))
}

// writeFileAtomic replaces path with data: temporary file in the same
// folder, fsync, rename, folder fsync. An existing file's mode and, when
// permitted, owner are kept (config.php is often the web server's).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	uid, gid := -1, -1
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".mbackup-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil && uid >= 0 {
		// Only root may give a file away; otherwise it stays ours.
		if cerr := f.Chown(uid, gid); cerr != nil && !errors.Is(cerr, fs.ErrPermission) {
			err = cerr
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		return err
	}
	return nil
}

// configFile is config.php of the copy, on a local path or through the
// Jelastic API.
type configFile interface {
	read(ctx context.Context) ([]byte, error)
	write(ctx context.Context, data []byte) error
	String() string
}

type localConfig struct{ path string }

func (c localConfig) read(context.Context) ([]byte, error) { return os.ReadFile(c.path) }
func (c localConfig) write(_ context.Context, data []byte) error {
	return writeFileAtomic(c.path, data, 0o640)
}
func (c localConfig) String() string { return c.path }

type remoteConfig struct {
	p         Platform
	env, path string
}

func (c remoteConfig) read(ctx context.Context) ([]byte, error) {
	s, err := c.p.ReadFile(ctx, c.env, "cp", c.path)
	return []byte(s), err
}

func (c remoteConfig) write(ctx context.Context, data []byte) error {
	return c.p.WriteFile(ctx, c.env, "cp", c.path, string(data))
}

func (c remoteConfig) String() string { return c.env + ":" + c.path }

// cleanMoodledata removes what the copy must not share with production:
// muc/config.php (it may point at production's Redis or Memcached, and
// Moodle recreates a default one), production's SAML service-provider
// key pair (saml2/<production host>.pem and .crt; the copy's new host
// gets its own), and the content of the cache folders.
func cleanMoodledata(moodledata, prodHost, copyHost string) ([]string, error) {
	var changes []string
	var errs []error
	remove := func(rel, why string) {
		err := os.Remove(filepath.Join(moodledata, rel))
		switch {
		case err == nil:
			changes = append(changes, fmt.Sprintf("moodledata: removed %s (%s)", rel, why))
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, err)
		}
	}
	remove("muc/config.php", "cache configuration that may point at production's cache servers")
	if prodHost != "" && prodHost != copyHost && !strings.ContainsAny(prodHost, `/\`) {
		remove("saml2/"+prodHost+".pem", "production's SAML private key")
		remove("saml2/"+prodHost+".crt", "production's SAML certificate")
	}
	for _, dir := range cacheDirs {
		entries, err := os.ReadDir(filepath.Join(moodledata, dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(moodledata, dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
		if len(entries) > 0 {
			changes = append(changes, fmt.Sprintf("moodledata: emptied %s/ (%d entries)", dir, len(entries)))
		}
	}
	return changes, errors.Join(errs...)
}
