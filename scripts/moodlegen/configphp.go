package moodlegen

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ConfigPHP holds the settings WriteConfigPHP puts into config.php. Empty
// fields get Moodle's usual values: DBHost "localhost", Prefix "mdl_",
// Admin "admin", DirectoryPermissions 0o2777, WWWRoot DefaultWWWRoot.
type ConfigPHP struct {
	DBHost string
	DBPort int // 0: the driver default (5432)
	DBName string
	DBUser string
	DBPass string
	Prefix string

	WWWRoot              string
	DataRoot             string
	Admin                string
	DirectoryPermissions int
	// Extra lines are inserted verbatim before the require_once line, for
	// instance "$CFG->noemailever = true;".
	Extra []string
}

// ConfigFromURL fills the database fields of a ConfigPHP from a postgres://
// URL, with dbName overriding the URL's database.
func ConfigFromURL(pgURL, dbName, dataRoot string) (ConfigPHP, error) {
	u, err := url.Parse(pgURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return ConfigPHP{}, fmt.Errorf("database URL %q: want postgres://USER@HOST:PORT/DB", redactURL(pgURL))
	}
	c := ConfigPHP{DBHost: u.Hostname(), DBName: dbName, DataRoot: dataRoot}
	if p := u.Port(); p != "" {
		if c.DBPort, err = strconv.Atoi(p); err != nil {
			return ConfigPHP{}, fmt.Errorf("database URL %q: bad port %q", redactURL(pgURL), p)
		}
	}
	if u.User != nil {
		c.DBUser = u.User.Username()
		c.DBPass, _ = u.User.Password()
	}
	if c.DBName == "" {
		c.DBName = strings.TrimPrefix(u.Path, "/")
	}
	return c, nil
}

// WriteConfigPHP writes a Moodle config.php to path atomically (temporary
// file, fsync, rename) with mode 0640: it holds the database password.
func WriteConfigPHP(path string, opts ConfigPHP) error {
	if opts.DBName == "" || opts.DataRoot == "" {
		return fmt.Errorf("write config.php %s: DBName and DataRoot are required", path)
	}
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	perms := opts.DirectoryPermissions
	if perms == 0 {
		perms = 0o2777
	}
	var b strings.Builder
	b.WriteString("<?php  // Moodle configuration file\n\n")
	b.WriteString("unset($CFG);\nglobal $CFG;\n$CFG = new stdClass();\n\n")
	fmt.Fprintf(&b, "$CFG->dbtype    = %s;\n", phpString("pgsql"))
	fmt.Fprintf(&b, "$CFG->dblibrary = %s;\n", phpString("native"))
	fmt.Fprintf(&b, "$CFG->dbhost    = %s;\n", phpString(def(opts.DBHost, "localhost")))
	fmt.Fprintf(&b, "$CFG->dbname    = %s;\n", phpString(opts.DBName))
	fmt.Fprintf(&b, "$CFG->dbuser    = %s;\n", phpString(opts.DBUser))
	fmt.Fprintf(&b, "$CFG->dbpass    = %s;\n", phpString(opts.DBPass))
	fmt.Fprintf(&b, "$CFG->prefix    = %s;\n", phpString(def(opts.Prefix, "mdl_")))
	b.WriteString("$CFG->dboptions = array (\n  'dbpersist' => 0,\n")
	if opts.DBPort != 0 {
		fmt.Fprintf(&b, "  'dbport' => %d,\n", opts.DBPort)
	} else {
		b.WriteString("  'dbport' => '',\n")
	}
	b.WriteString("  'dbsocket' => '',\n);\n\n")
	fmt.Fprintf(&b, "$CFG->wwwroot   = %s;\n", phpString(def(opts.WWWRoot, DefaultWWWRoot)))
	fmt.Fprintf(&b, "$CFG->dataroot  = %s;\n", phpString(opts.DataRoot))
	fmt.Fprintf(&b, "$CFG->admin     = %s;\n\n", phpString(def(opts.Admin, "admin")))
	fmt.Fprintf(&b, "$CFG->directorypermissions = 0%o;\n\n", perms)
	for _, l := range opts.Extra {
		b.WriteString(l + "\n")
	}
	if len(opts.Extra) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("require_once(__DIR__ . '/lib/setup.php');\n\n")
	b.WriteString("// There is no php closing tag in this file,\n// it is intentional because it prevents trailing whitespace problems!\n")
	if err := writeFileAtomic(path, []byte(b.String()), 0o640); err != nil {
		return fmt.Errorf("write config.php %s: %w", path, err)
	}
	return nil
}

// phpString quotes s as a PHP single-quoted string literal.
func phpString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
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
		d.Sync()
		d.Close()
	}
	return nil
}
