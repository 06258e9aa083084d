package staging

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mbackup/mbackup/restore/jelastic"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

// Site is one Moodle site as mbackup reaches it.
type Site struct {
	// JelasticEnv is the site's Jelastic environment.
	JelasticEnv string
	// DB is the site's database.
	DB postgres.DB
	// Moodledata is the moodledata folder as mbackup sees it.
	Moodledata string
	// ConfigPHP is config.php as mbackup sees it; "" reaches it through
	// the Jelastic API on the cp node instead.
	ConfigPHP string
}

// RefusedError is a refresh or side restore that would put production at
// risk, or cannot be done as asked: nothing was changed. The CLI exits
// with status 2 for it.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "refused: " + e.Reason }

// IsRefused reports whether err is a *RefusedError.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

func refuse(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// dbAddr is a database's server and name, for comparisons.
type dbAddr struct {
	host string
	port int
	name string
	user string
}

func parseDB(db postgres.DB) (dbAddr, error) {
	u, err := url.Parse(db.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dbAddr{}, fmt.Errorf("database %s: want a postgres:// URL", db)
	}
	a := dbAddr{host: u.Hostname(), port: 5432, name: strings.TrimPrefix(u.Path, "/")}
	if h := u.Query().Get("host"); a.host == "" && h != "" {
		a.host = h
	}
	if p := u.Port(); p != "" {
		if a.port, err = strconv.Atoi(p); err != nil {
			return dbAddr{}, fmt.Errorf("database %s: bad port %q", db, p)
		}
	}
	if u.User != nil {
		a.user = u.User.Username()
	}
	if a.name == "" {
		return dbAddr{}, fmt.Errorf("database %s: the URL names no database", db)
	}
	return a, nil
}

// normHost folds the names of the local server into one.
func normHost(h string) string {
	h = strings.ToLower(strings.Trim(h, "[]"))
	switch {
	case h == "", h == "localhost", h == "127.0.0.1", h == "::1", strings.HasPrefix(h, "/"):
		return "localhost"
	}
	return h
}

func (a dbAddr) same(b dbAddr) bool {
	return normHost(a.host) == normHost(b.host) && a.port == b.port && a.name == b.name
}

// overlaps reports whether two paths name the same file or folder, or
// one lies inside the other.
func overlaps(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	a, b = filepath.Clean(a), filepath.Clean(b)
	if a == b {
		return true
	}
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil && os.SameFile(fa, fb) {
			return true
		}
	}
	for _, p := range [][2]string{{a, b}, {b, a}} {
		if rel, err := filepath.Rel(p[0], p[1]); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

// checkDistinct refuses a copy that shares anything with production.
func checkDistinct(prod, copy Site, o Settings) error {
	switch {
	case copy.JelasticEnv == "":
		return refuse("the copy has no Jelastic environment name")
	case prod.JelasticEnv == "":
		return refuse("production has no Jelastic environment to clone (set jelastic_env)")
	case strings.EqualFold(prod.JelasticEnv, copy.JelasticEnv):
		return refuse("the copy's Jelastic environment %s is production's: a refresh would delete or overwrite production", copy.JelasticEnv)
	}
	if err := jelastic.ValidateEnvName(copy.JelasticEnv); err != nil {
		return refuse("the copy's Jelastic environment: %v", err)
	}
	pa, err := parseDB(prod.DB)
	if err != nil {
		return refuse("production %v", err)
	}
	ca, err := parseDB(copy.DB)
	if err != nil {
		return refuse("the copy's %v", err)
	}
	if pa.same(ca) {
		return refuse("the copy's database %s is production's database", copy.DB)
	}
	if o.DBHost != "" && o.DBName != "" {
		port := o.DBPort
		if port == 0 {
			port = ca.port
		}
		if (dbAddr{host: o.DBHost, port: port, name: o.DBName}).same(pa) {
			return refuse("the copy's config.php would point at production's database %s/%s", o.DBHost, o.DBName)
		}
	}
	if copy.Moodledata == "" {
		return refuse("the copy has no moodledata folder")
	}
	if overlaps(prod.Moodledata, copy.Moodledata) {
		return refuse("the copy's moodledata %s is (or overlaps) production's %s", copy.Moodledata, prod.Moodledata)
	}
	if prod.ConfigPHP != "" && copy.ConfigPHP != "" && overlaps(prod.ConfigPHP, copy.ConfigPHP) {
		return refuse("the copy's config.php %s is production's", copy.ConfigPHP)
	}
	if o.DataRoot != "" && overlaps(prod.Moodledata, o.DataRoot) {
		return refuse("the copy's dataroot %s is production's moodledata", o.DataRoot)
	}
	return nil
}

// DeriveClone returns the site of a new clone of prod named newEnv, by the
// naming rule of a Jelastic fleet: every part of production's addresses
// that is production's environment name is replaced by the new name.
//
//   - database: a host label equal to the environment name (db.client-x.internal
//     becomes db.NEW.internal) and a database name equal to it with "-" as
//     "_" (client_x becomes NEW with "_"), or spelled as the environment;
//     user, password, port and options stay (a clone's database server has
//     production's roles);
//   - moodledata and config.php: a path element equal to the environment
//     name (/srv/client-x/moodledata becomes /srv/NEW/moodledata).
//
// This is also the layout of jelastic-sim (ROOT/NAME/moodledata,
// ROOT/NAME/www/config.php, database NAME with "_"). An address that does
// not contain the name cannot be derived: that is an error naming it, and
// nothing is guessed.
func DeriveClone(prod Site, newEnv string) (Site, error) {
	if err := jelastic.ValidateEnvName(newEnv); err != nil {
		return Site{}, refuse("clone name: %v", err)
	}
	old := prod.JelasticEnv
	if old == "" {
		return Site{}, refuse("production has no jelastic_env: nothing to clone")
	}
	if strings.EqualFold(old, newEnv) {
		return Site{}, refuse("the clone's name %s is production's", newEnv)
	}
	u, err := url.Parse(prod.DB.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return Site{}, refuse("production database %s: want a postgres:// URL", prod.DB)
	}
	changed := false
	if h := u.Hostname(); h != "" {
		labels := strings.Split(h, ".")
		for i, l := range labels {
			if strings.EqualFold(l, old) {
				labels[i], changed = newEnv, true
			}
		}
		nh := strings.Join(labels, ".")
		if p := u.Port(); p != "" {
			nh += ":" + p
		}
		u.Host = nh
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == underscore(old) || name == old {
		u.Path, changed = "/"+underscore(newEnv), true
	}
	if !changed {
		return Site{}, refuse("cannot derive the clone's database from %s: neither its host nor its name is the environment name %s (or %s)",
			prod.DB, old, underscore(old))
	}
	md, err := replaceElem(prod.Moodledata, old, newEnv)
	if err != nil {
		return Site{}, refuse("cannot derive the clone's moodledata: %v", err)
	}
	cp := ""
	if prod.ConfigPHP != "" {
		if cp, err = replaceElem(prod.ConfigPHP, old, newEnv); err != nil {
			return Site{}, refuse("cannot derive the clone's config.php: %v", err)
		}
	}
	return Site{JelasticEnv: newEnv, DB: postgres.DB{URL: u.String(), Password: prod.DB.Password}, Moodledata: md, ConfigPHP: cp}, nil
}

func underscore(env string) string { return strings.ReplaceAll(env, "-", "_") }

func replaceElem(p, old, repl string) (string, error) {
	elems := strings.Split(filepath.Clean(p), string(filepath.Separator))
	changed := false
	for i, e := range elems {
		if e == old {
			elems[i], changed = repl, true
		}
	}
	if !changed {
		return "", fmt.Errorf("no element of %s is the environment name %s", p, old)
	}
	return strings.Join(elems, string(filepath.Separator)), nil
}

// urlPassword returns the password embedded in a database URL, if any.
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}
