package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// layer holds the settings that defaults and environments share, with
// presence, so an environment overrides only what it writes.
type layer struct {
	schedule   *Schedule
	retention  retentionLayer
	exclude    []string
	hasExclude bool
	excludeAdd []string
	pgBin      *string
	pgBinAt    pos
}

type retentionLayer struct {
	counts  [6]*int // last, hourly, daily, weekly, monthly, yearly
	within  *string
	tags    []string
	hasTags bool
}

var retentionKeys = [6]string{"last", "hourly", "daily", "weekly", "monthly", "yearly"}

func (d *decoder) layerHandlers(l *layer, loc *time.Location) map[string]handler {
	return map[string]handler{
		"schedule": func(v *yaml.Node, key string, _ int) {
			if s, ok := d.schedule(v, key, loc); ok {
				l.schedule = &s
			}
		},
		"retention": func(v *yaml.Node, key string, _ int) { d.retention(v, key, &l.retention) },
		"exclude": func(v *yaml.Node, key string, _ int) {
			if ex, ok := d.excludes(v, key); ok {
				l.exclude, l.hasExclude = ex, true
			}
		},
		"exclude_add": func(v *yaml.Node, key string, _ int) {
			if ex, ok := d.excludes(v, key); ok {
				l.excludeAdd = ex
			}
		},
		"postgres_bin": func(v *yaml.Node, key string, line int) {
			if p, ok := d.path(v, key); ok {
				l.pgBin, l.pgBinAt = &p, pos{key, line}
			}
		},
	}
}

func (d *decoder) retention(v *yaml.Node, key string, r *retentionLayer) {
	hs := map[string]handler{
		"within": func(v *yaml.Node, key string, _ int) {
			s, ok := d.str(v, key)
			if !ok {
				return
			}
			w, err := normaliseWithin(s)
			if err != nil {
				d.fail(v.Line, key, "write e.g. 14d, 2w, 1y6m or 36h (m = months, as in restic)", "%v", err)
				return
			}
			r.within = &w
		},
		"tags": func(v *yaml.Node, key string, _ int) {
			if tags, ok := d.tags(v, key); ok {
				r.tags, r.hasTags = tags, true
			}
		},
	}
	for i, name := range retentionKeys {
		hs[name] = func(v *yaml.Node, key string, _ int) {
			if n, ok := d.integer(v, key, Unlimited); ok {
				r.counts[i] = &n
			}
		}
	}
	d.fields(v, key, hs)
}

// excludes decodes a list of moodledata-relative paths or glob patterns.
func (d *decoder) excludes(v *yaml.Node, key string) ([]string, bool) {
	if !d.isKind(v, key, yaml.SequenceNode) {
		return nil, false
	}
	out := []string{}
	good := true
	for i, item := range v.Content {
		item = deref(item)
		ikey := fmt.Sprintf("%s[%d]", key, i)
		s, ok := d.required(item, ikey, "remove the empty item")
		if !ok {
			good = false
			continue
		}
		c, err := cleanExclude(s)
		if err != nil {
			d.fail(item.Line, ikey, "write a path relative to moodledata, e.g. cache or temp/backup", "%v", err)
			good = false
			continue
		}
		out = append(out, c)
	}
	return out, good
}

func cleanExclude(p string) (string, error) {
	p = filepath.ToSlash(p)
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q must be relative to moodledata", p)
	}
	c := path.Clean(p)
	switch {
	case c == ".":
		return "", fmt.Errorf("%q would exclude all of moodledata", p)
	case c == ".." || strings.HasPrefix(c, "../"):
		return "", fmt.Errorf("%q points outside moodledata", p)
	}
	if _, err := path.Match(c, ""); err != nil {
		return "", fmt.Errorf("bad pattern %q: %v", p, err)
	}
	return c, nil
}

func (d *decoder) tags(v *yaml.Node, key string) ([]string, bool) {
	tags, ok := d.list(v, key)
	if !ok {
		return nil, false
	}
	for i, t := range tags {
		if strings.ContainsAny(t, ", \t") {
			d.fail(deref(v.Content[i]).Line, fmt.Sprintf("%s[%d]", key, i), "use one word per tag", "bad tag %q: no spaces or commas", t)
			ok = false
		}
	}
	return tags, ok
}

// resolveLayers merges an environment's layer over the defaults: schedule
// and each retention field are taken from env when it sets them; exclude
// replaces the default list and exclude_add appends to whichever applies.
func resolveLayers(def, env layer) (out Defaults) {
	switch {
	case env.schedule != nil:
		out.Schedule = *env.schedule
	case def.schedule != nil:
		out.Schedule = *def.schedule
	}
	counts := [6]*int{}
	for i := range counts {
		if c := env.retention.counts[i]; c != nil {
			counts[i] = c
		} else {
			counts[i] = def.retention.counts[i]
		}
	}
	get := func(i int) int {
		if counts[i] == nil {
			return 0
		}
		return *counts[i]
	}
	out.Retention = Retention{Last: get(0), Hourly: get(1), Daily: get(2), Weekly: get(3), Monthly: get(4), Yearly: get(5)}
	switch {
	case env.retention.within != nil:
		out.Retention.Within = *env.retention.within
	case def.retention.within != nil:
		out.Retention.Within = *def.retention.within
	}
	switch {
	case env.retention.hasTags:
		out.Retention.Tags = slices.Clone(env.retention.tags)
	case def.retention.hasTags:
		out.Retention.Tags = slices.Clone(def.retention.tags)
	}
	ex := DefaultExclude()
	if def.hasExclude {
		ex = slices.Clone(def.exclude)
	}
	ex = append(ex, def.excludeAdd...)
	if env.hasExclude {
		ex = slices.Clone(env.exclude)
	}
	ex = append(ex, env.excludeAdd...)
	out.Exclude = dedupe(ex)
	switch {
	case env.pgBin != nil:
		out.PostgresBin, out.postgresBinAt = *env.pgBin, env.pgBinAt
	case def.pgBin != nil:
		out.PostgresBin, out.postgresBinAt = *def.pgBin, def.pgBinAt
	}
	return out
}

func dedupe(xs []string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// pos records where a value was written, for errors found after decoding.
type pos struct {
	key  string
	line int
}

// envDraft is a decoded environment plus the positions the cross-checks need.
type envDraft struct {
	env *Environment
	at  map[string]pos // by setting: "database", "staging.moodledata", ...
}

func (d *decoder) environments(v *yaml.Node, key string, defaults layer, loc *time.Location) []*envDraft {
	var drafts []*envDraft
	for _, e := range d.entries(v, key) {
		ekey := join(key, e.name)
		if err := checkName(e.name); err != nil {
			d.fail(e.k.Line, ekey, "rename the environment", "%v", err)
			continue
		}
		if isNull(e.v) {
			d.fail(e.k.Line, ekey, "add database: and moodledata:", "environment has no settings")
			continue
		}
		if dr := d.environment(deref(e.v), ekey, e.name, e.k.Line, defaults, loc); dr != nil {
			drafts = append(drafts, dr)
		}
	}
	return drafts
}

func (d *decoder) environment(v *yaml.Node, key, name string, line int, defaults layer, loc *time.Location) *envDraft {
	env := &Environment{Name: name, Line: line}
	dr := &envDraft{env: env, at: map[string]pos{"": {key, line}}}
	var l layer
	hs := d.layerHandlers(&l, loc)
	hs["database"] = func(v *yaml.Node, key string, line int) {
		dr.at["database"] = pos{key, line}
		if db, ok := d.database(v, key); ok {
			env.Database = db
		}
	}
	hs["database_password_file"] = func(v *yaml.Node, key string, _ int) {
		d.secretFile(v, key, &env.dbPassword)
		env.DatabasePasswordFile = env.dbPassword.File
	}
	hs["moodledata"] = func(v *yaml.Node, key string, line int) {
		dr.at["moodledata"] = pos{key, line}
		env.Moodledata, _ = d.path(v, key)
	}
	hs["config_php"] = func(v *yaml.Node, key string, line int) {
		dr.at["config_php"] = pos{key, line}
		env.ConfigPHP, _ = d.path(v, key)
	}
	hs["jelastic_env"] = func(v *yaml.Node, key string, line int) {
		dr.at["jelastic_env"] = pos{key, line}
		env.JelasticEnv, _ = d.jelasticName(v, key)
	}
	hs["tags"] = func(v *yaml.Node, key string, _ int) { env.Tags, _ = d.tags(v, key) }
	hs["staging"] = func(v *yaml.Node, key string, line int) {
		dr.at["staging"] = pos{key, line}
		env.Staging = d.staging(v, key, line, dr, loc)
	}
	if !d.fields(v, key, hs) {
		return nil
	}
	if _, ok := dr.at["database"]; !ok {
		d.fail(line, key, "add database: postgres://USER@HOST:5432/DBNAME", "missing database")
	}
	if _, ok := dr.at["moodledata"]; !ok {
		d.fail(line, key, "add moodledata: /path/to/moodledata", "missing moodledata")
	}
	r := resolveLayers(defaults, l)
	env.Schedule, env.Retention, env.Exclude = r.Schedule, r.Retention, r.Exclude
	env.PostgresBin, env.postgresBinAt = r.PostgresBin, r.postgresBinAt
	return dr
}

func (d *decoder) staging(v *yaml.Node, key string, line int, dr *envDraft, loc *time.Location) *Staging {
	s := &Staging{}
	hs := map[string]handler{
		"jelastic_env": func(v *yaml.Node, key string, line int) {
			dr.at["staging.jelastic_env"] = pos{key, line}
			s.JelasticEnv, _ = d.jelasticName(v, key)
		},
		"database": func(v *yaml.Node, key string, line int) {
			dr.at["staging.database"] = pos{key, line}
			if db, ok := d.database(v, key); ok {
				s.Database = db
			}
		},
		"database_password_file": func(v *yaml.Node, key string, _ int) {
			d.secretFile(v, key, &s.dbPassword)
			s.DatabasePasswordFile = s.dbPassword.File
		},
		"moodledata": func(v *yaml.Node, key string, line int) {
			dr.at["staging.moodledata"] = pos{key, line}
			s.Moodledata, _ = d.path(v, key)
		},
		"config_php": func(v *yaml.Node, key string, line int) {
			dr.at["staging.config_php"] = pos{key, line}
			s.ConfigPHP, _ = d.path(v, key)
		},
		"wwwroot": func(v *yaml.Node, key string, line int) {
			dr.at["staging.wwwroot"] = pos{key, line}
			u, ok := d.required(v, key, "write the staging site's URL, e.g. https://client-x-staging.example.ch")
			if !ok {
				return
			}
			if err := checkHTTPURL(u); err != nil {
				d.fail(v.Line, key, "write the staging site's URL, e.g. https://client-x-staging.example.ch", "%v", err)
				return
			}
			if strings.HasSuffix(u, "/") {
				d.fail(v.Line, key, "remove the trailing /", "Moodle's wwwroot must not end with /")
				return
			}
			s.WWWRoot = u
		},
		"divert_emails_to": func(v *yaml.Node, key string, _ int) {
			a, ok := d.required(v, key, "write one address, e.g. qa@example.ch")
			if !ok {
				return
			}
			if p, err := mailAddress(a); err != nil || p != a {
				d.fail(v.Line, key, "write one plain address, e.g. qa@example.ch", "bad e-mail address %q", a)
				return
			}
			s.DivertEmailsTo = a
		},
		"schedule": func(v *yaml.Node, key string, _ int) {
			if sc, ok := d.schedule(v, key, loc); ok {
				s.Schedule = sc
			}
		},
	}
	if !d.fields(v, key, hs) {
		return nil
	}
	var missing []string
	for _, name := range []string{"jelastic_env", "database", "moodledata", "config_php", "wwwroot"} {
		if _, ok := dr.at["staging."+name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		d.fail(line, key, "a staging copy needs jelastic_env, database, moodledata, config_php and wwwroot",
			"missing %s", strings.Join(missing, ", "))
	}
	return s
}

func (d *decoder) database(v *yaml.Node, key string) (Database, bool) {
	const fix = "write postgres://USER@HOST:5432/DBNAME (keep the password in database_password_file)"
	s, ok := d.required(v, key, fix)
	if !ok {
		return Database{}, false
	}
	db, err := parseDatabase(s)
	if err != nil {
		d.fail(v.Line, key, fix, "%v", err)
		return Database{}, false
	}
	return db, true
}

func (d *decoder) jelasticName(v *yaml.Node, key string) (string, bool) {
	s, ok := d.required(v, key, "write the Jelastic environment name")
	if !ok {
		return "", false
	}
	if err := checkName(s); err != nil {
		d.fail(v.Line, key, "use the name exactly as Jelastic shows it", "%v", err)
		return "", false
	}
	return s, true
}

// site is one production environment or staging copy, for the checks that
// no two of them share a database, a folder or a Jelastic environment.
type site struct {
	staging    bool
	db         Database
	dbAt       pos
	moodledata string
	mdAt       pos
	configPHP  string
	cpAt       pos
	jelastic   string
	jeAt       pos
}

// crossCheck applies the checks that need the whole file: staging needs
// Jelastic, no site may share a database, moodledata, config.php or Jelastic
// environment with another, and (unless skipped) production paths exist.
func (d *decoder) crossCheck(cfg *Config, drafts []*envDraft, o loadOptions) {
	var sites []site
	for _, dr := range drafts {
		e := dr.env
		sites = append(sites, site{
			db: e.Database, dbAt: dr.at["database"],
			moodledata: e.Moodledata, mdAt: dr.at["moodledata"],
			configPHP: e.ConfigPHP, cpAt: dr.at["config_php"],
			jelastic: e.JelasticEnv, jeAt: dr.at["jelastic_env"],
		})
		e.file, e.moodledataAt, e.configPHPAt = d.file, dr.at["moodledata"], dr.at["config_php"]
		if !o.skipPathChecks {
			var ce *Error
			if err := e.CheckPaths(); errors.As(err, &ce) {
				d.errs = append(d.errs, ce)
			}
		}
		if e.Staging == nil {
			continue
		}
		st := dr.at["staging"]
		if cfg.Jelastic == nil {
			d.fail(st.line, st.key, "add jelastic: {url: ..., token_env: ...}", "staging needs the jelastic section (staging copies are Jelastic clones)")
		}
		if e.JelasticEnv == "" {
			d.fail(st.line, st.key, "add jelastic_env: to "+dr.at[""].key, "staging needs the environment's own jelastic_env to clone from")
		}
		s := e.Staging
		sites = append(sites, site{
			staging: true,
			db:      s.Database, dbAt: dr.at["staging.database"],
			moodledata: s.Moodledata, mdAt: dr.at["staging.moodledata"],
			configPHP: s.ConfigPHP, cpAt: dr.at["staging.config_php"],
			jelastic: s.JelasticEnv, jeAt: dr.at["staging.jelastic_env"],
		})
	}
	for j := range sites {
		b := sites[j]
		fix := func(what string) string {
			if b.staging {
				return "give the staging copy its own " + what + " (a staging refresh overwrites it)"
			}
			return "give every environment its own " + what
		}
		for i := range j {
			a := sites[i]
			if a.db.Name != "" && b.db.Name != "" && a.db.SameAs(b.db) {
				d.fail(b.dbAt.line, b.dbAt.key, fix("database"), "same database (%s) as %s (line %d)",
					b.db.Address(), a.dbAt.key, a.dbAt.line)
			}
			if rel := overlap(a.moodledata, b.moodledata); rel != "" {
				d.fail(b.mdAt.line, b.mdAt.key, fix("moodledata folder"), "%s %s (line %d)", rel, a.mdAt.key, a.mdAt.line)
			}
			if a.configPHP != "" && b.configPHP != "" && sameFile(a.configPHP, b.configPHP) {
				d.fail(b.cpAt.line, b.cpAt.key, fix("config.php"), "same file as %s (line %d)", a.cpAt.key, a.cpAt.line)
			}
			if a.jelastic != "" && strings.EqualFold(a.jelastic, b.jelastic) {
				d.fail(b.jeAt.line, b.jeAt.key, fix("Jelastic environment"), "same Jelastic environment %q as %s (line %d)",
					b.jelastic, a.jeAt.key, a.jeAt.line)
			}
		}
	}
}

// overlap describes how folder b relates to folder a ("same folder as",
// "is inside", "contains") or returns "" when they are apart.
func overlap(a, b string) string {
	if a == "" || b == "" {
		return ""
	}
	if sameFile(a, b) {
		return "same folder as"
	}
	if rel, err := filepath.Rel(a, b); err == nil && !strings.HasPrefix(rel, "..") {
		return "is inside"
	}
	if rel, err := filepath.Rel(b, a); err == nil && !strings.HasPrefix(rel, "..") {
		return "contains"
	}
	return ""
}

// sameFile compares cleaned paths, and the files themselves when both exist
// (so a symlink to the same folder counts).
func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// checkDir returns what is wrong with folder p ("" when fine) and the cause.
func checkDir(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("folder %s does not exist", p), err
	case err != nil:
		return fmt.Sprintf("cannot use folder %s: %s", p, causeText(err)), err
	case !fi.IsDir():
		return fmt.Sprintf("%s is not a folder", p), nil
	}
	return "", nil
}

// checkFile returns what is wrong with regular file p ("" when fine) and the cause.
func checkFile(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("file %s does not exist", p), err
	case err != nil:
		return fmt.Sprintf("cannot use file %s: %s", p, causeText(err)), err
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("%s is not a regular file", p), nil
	}
	return "", nil
}

// checkProgram returns what is wrong with program p ("" when fine) and the cause.
func checkProgram(p string) (string, error) {
	msg, err := checkFile(p)
	if msg == "" {
		if fi, serr := os.Stat(p); serr == nil && fi.Mode().Perm()&0o111 == 0 {
			msg = fmt.Sprintf("%s is not executable", p)
		}
	}
	return msg, err
}

// CheckPaths reports, as an *Error, a moodledata folder or config_php file
// that is missing or of the wrong kind, or a postgres_bin folder without
// pg_dump and pg_restore. Load does this for every environment unless
// SkipPathChecks is given.
func (e *Environment) CheckPaths() error {
	if msg, err := checkDir(e.Moodledata); msg != "" {
		return &Error{File: e.file, Line: e.moodledataAt.line, Key: e.moodledataAt.key, Msg: msg,
			Fix: "mount or create it, or correct the path", Err: err}
	}
	if msg, err := checkFile(e.ConfigPHP); msg != "" {
		return &Error{File: e.file, Line: e.configPHPAt.line, Key: e.configPHPAt.key, Msg: msg,
			Fix: "correct the path or remove config_php", Err: err}
	}
	if e.PostgresBin != "" {
		const fix = "point it at the folder of PostgreSQL's client programs, e.g. /usr/lib/postgresql/16/bin, or remove it to use PATH"
		msg, err := checkDir(e.PostgresBin)
		for _, p := range []string{e.PgDump(), e.PgRestore()} {
			if msg == "" {
				msg, err = checkProgram(p)
			}
		}
		if msg != "" {
			return &Error{File: e.file, Line: e.postgresBinAt.line, Key: e.postgresBinAt.key, Msg: msg, Fix: fix, Err: err}
		}
	}
	return nil
}

// PgDump returns the pg_dump program to run for the environment: the one
// in PostgresBin, else "pg_dump" (found on PATH).
func (e *Environment) PgDump() string { return e.program("pg_dump") }

// PgRestore is PgDump for pg_restore.
func (e *Environment) PgRestore() string { return e.program("pg_restore") }

func (e *Environment) program(name string) string {
	if e.PostgresBin == "" {
		return name
	}
	return filepath.Join(e.PostgresBin, name)
}
