package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/restore"
	"github.com/mbackup/mbackup/restore/jelastic"
	"github.com/mbackup/mbackup/snapshot"
)

// Platform is the part of the Jelastic API a refresh uses;
// *jelastic.Client implements it.
type Platform interface {
	GetEnvInfo(ctx context.Context, env string) (*jelastic.EnvInfo, error)
	CloneEnv(ctx context.Context, src, dst string) (*jelastic.EnvInfo, error)
	DeleteEnv(ctx context.Context, env, password string) error
	StartEnv(ctx context.Context, env string) error
	WaitStatus(ctx context.Context, env string, want jelastic.Status, timeout, interval time.Duration) (*jelastic.EnvInfo, error)
	RestartNodes(ctx context.Context, env, group string) error
	ReadFile(ctx context.Context, env, group, path string) (string, error)
	WriteFile(ctx context.Context, env, group, path, body string) error
}

// Params describe one staging refresh or side restore.
type Params struct {
	// Env is production's name in mbackup's configuration, for messages
	// and the restore's report.
	Env string
	// Production is the site the copy is cloned from. Nothing is ever
	// written to it; its database and folders are only compared with the
	// copy's, and its config.php only read.
	Production Site
	// Copy is the staging site (or the new clone of a side restore).
	Copy Site
	// Settings describe the copy for config.php and the sanitizer.
	// WWWRoot is required for a refresh; a side restore without one uses
	// the clone's platform domain. Database fields left empty come from
	// Copy.DB (DBPass from its password, when it has one), except that a
	// side restore keeps the clone's dbuser and dbpass: they are
	// production's Moodle credentials, valid on the clone's copy of the
	// database server, while Copy.DB's user is whoever mbackup connects as.
	Settings Settings
	// Exclude lists the moodledata paths the restore leaves alone:
	// production's backup excludes.
	Exclude []string

	Platform Platform
	Repo     *engine.Repository
	Snapshot *snapshot.Snapshot

	// Reclone deletes an existing staging environment and clones it
	// afresh (refresh only).
	Reclone bool
	// DryRun only plans: the platform is asked about environments, files
	// are read, nothing is written and nothing is changed.
	DryRun bool

	// RemoteConfigPHP is config.php's path on the cp node, used when
	// Copy.ConfigPHP is "" (default DefaultRemoteConfigPHP).
	RemoteConfigPHP string
	// WaitTimeout bounds the wait for an environment to run (default
	// 30 minutes); PollInterval is the poll period (default 5 s).
	WaitTimeout, PollInterval time.Duration
	// Restore tunes the replay (Jobs, PgRestore, TempDir, Progress, Now,
	// Log). DryRun, KeepMaintenance and DropPrevious are set by the
	// refresh.
	Restore restore.Options
	// Log receives what the refresh does; nil discards it.
	Log *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Kinds of runs, for reports and messages.
const (
	KindRefresh     = "staging refresh"
	KindSideRestore = "side restore"
)

// Refresh refreshes a staging copy: when the staging environment is
// missing (or Reclone: after deleting it) production is cloned to it and
// the clone awaited; then its config.php is pointed at its own database
// and URL with e-mail off (first of all: a fresh clone still points at
// production's database) and the copy is put in maintenance mode; the
// snapshot is replayed into its database and moodledata by
// restore.InPlace, the database is sanitized, config.php checked again,
// muc/config.php, production's SAML key and the caches removed, the app
// nodes restarted and maintenance mode ended.
//
// A copy that shares its Jelastic environment, database, moodledata or
// config.php with production is refused (*RefusedError) before anything
// happens. The report lists every change. When a step fails after the
// copy was touched, the report's Status is "broken", and the copy's
// climaintenance.html says so, so that nobody tests on a half-refreshed
// copy; the error is returned with the report.
func Refresh(ctx context.Context, p Params) (*Report, error) {
	return run(ctx, p, KindRefresh)
}

// SideRestore clones production to the new environment p.Copy.JelasticEnv
// (which must not exist; see DeriveClone for its addresses) and replays
// the snapshot into it, sanitized like a staging copy: a way to recover
// one course without touching production. Its steps and guarantees are
// Refresh's.
func SideRestore(ctx context.Context, p Params) (*Report, error) {
	return run(ctx, p, KindSideRestore)
}

// runner carries one run's state.
type runner struct {
	p       Params
	kind    string
	rep     *Report
	cfg     configFile
	touched bool   // the copy has been changed: a failure now breaks it
	prodWWW string // production's wwwroot, when known
}

func (p *Params) defaults() {
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.WaitTimeout <= 0 {
		p.WaitTimeout = 30 * time.Minute
	}
	if p.PollInterval <= 0 {
		p.PollInterval = 5 * time.Second
	}
	if p.RemoteConfigPHP == "" {
		p.RemoteConfigPHP = DefaultRemoteConfigPHP
	}
	if p.Restore.Log == nil {
		p.Restore.Log = p.Log
	}
}

// fillSettings completes the database fields from the copy's database.
func (p *Params) fillSettings(kind string) error {
	a, err := parseDB(p.Copy.DB)
	if err != nil {
		return refuse("the copy's %v", err)
	}
	o := &p.Settings
	if o.DBHost == "" {
		o.DBHost = a.host
		if o.DBHost == "" || strings.HasPrefix(o.DBHost, "/") {
			o.DBHost = "localhost"
		}
	}
	if o.DBName == "" {
		o.DBName = a.name
	}
	if o.DBPort == 0 {
		o.DBPort = a.port
	}
	if kind == KindSideRestore {
		return nil
	}
	if o.DBUser == "" {
		o.DBUser = a.user
	}
	if o.DBPass == "" {
		o.DBPass = p.Copy.DB.Password
		if o.DBPass == "" {
			o.DBPass = urlPassword(p.Copy.DB.URL)
		}
	}
	return nil
}

func run(ctx context.Context, p Params, kind string) (*Report, error) {
	p.defaults()
	start := p.Now()
	r := &runner{p: p, kind: kind, rep: &Report{
		Kind: kind, Env: p.Env, Production: p.Production.JelasticEnv, Copy: p.Copy.JelasticEnv,
		Database: p.Copy.DB.String(), Moodledata: p.Copy.Moodledata, DryRun: p.DryRun, Status: StatusFailed,
	}}
	if p.Snapshot != nil {
		r.rep.Snapshot = p.Snapshot.ID().String()
	}
	err := r.run(ctx)
	r.rep.Duration = p.Now().Sub(start)
	if err == nil {
		return r.rep, nil
	}
	r.rep.Error = err.Error()
	if IsRefused(err) {
		return r.rep, err
	}
	return r.rep, fmt.Errorf("%s of %s into %s: %w", kind, p.Env, p.Copy.JelasticEnv, err)
}

func (r *runner) run(ctx context.Context) error {
	p := &r.p
	if err := p.fillSettings(r.kind); err != nil {
		return err
	}
	if err := checkDistinct(p.Production, p.Copy, p.Settings); err != nil {
		return err
	}
	if p.Platform == nil {
		return errors.New("a Jelastic client is required")
	}
	r.prodWWW = r.productionWWWRoot(ctx)
	if p.Settings.WWWRoot != "" && r.prodWWW != "" && host(p.Settings.WWWRoot) == host(r.prodWWW) {
		return refuse("the copy's wwwroot %s has production's host", p.Settings.WWWRoot)
	}
	if p.Settings.WWWRoot == "" && r.kind == KindRefresh {
		return refuse("the staging copy has no wwwroot")
	}
	if err := p.Settings.validate(); err != nil {
		return refuse("%v", err)
	}
	if p.Repo == nil || p.Snapshot == nil {
		return errors.New("a repository and a snapshot are required")
	}
	if p.Copy.ConfigPHP != "" {
		r.cfg = localConfig{path: p.Copy.ConfigPHP}
	} else {
		r.cfg = remoteConfig{p: p.Platform, env: p.Copy.JelasticEnv, path: p.RemoteConfigPHP}
	}
	r.rep.Config = r.cfg.String()

	info, err := p.Platform.GetEnvInfo(ctx, p.Copy.JelasticEnv)
	exists := err == nil
	switch {
	case err != nil && !jelastic.IsNotExist(err):
		return r.fail("inspect", fmt.Errorf("look up Jelastic environment %s: %w", p.Copy.JelasticEnv, err))
	case exists && r.kind == KindSideRestore:
		return refuse("Jelastic environment %s exists already: a side restore clones into a new environment (choose another name)", p.Copy.JelasticEnv)
	}
	clone := !exists || p.Reclone
	if r.kind == KindRefresh && !clone {
		// An existing staging copy is only reused when its folder is
		// there to receive the replay.
		if fi, err := os.Stat(p.Copy.Moodledata); err != nil || !fi.IsDir() {
			return refuse("staging environment %s exists but its moodledata %s is not a folder here (check staging.moodledata, or use --reclone)", p.Copy.JelasticEnv, p.Copy.Moodledata)
		}
	}
	if clone {
		// The source must exist before anything is deleted.
		if _, err := p.Platform.GetEnvInfo(ctx, p.Production.JelasticEnv); err != nil {
			return r.fail("inspect", fmt.Errorf("look up production's Jelastic environment %s: %w", p.Production.JelasticEnv, err))
		}
	}
	if p.DryRun {
		return r.plan(ctx, info, exists, clone)
	}
	r.rep.Status = StatusRunning

	// 1. The environment.
	if exists && p.Reclone {
		r.touched = true
		if err := p.Platform.DeleteEnv(ctx, p.Copy.JelasticEnv, p.Copy.JelasticEnv); err != nil {
			return r.fail("delete", fmt.Errorf("delete Jelastic environment %s: %w", p.Copy.JelasticEnv, err))
		}
		r.done("delete", "deleted Jelastic environment "+p.Copy.JelasticEnv+" (its database and files)")
	}
	if clone {
		r.touched = true
		ci, err := p.Platform.CloneEnv(ctx, p.Production.JelasticEnv, p.Copy.JelasticEnv)
		if err != nil {
			return r.fail("clone", fmt.Errorf("clone %s to %s: %w", p.Production.JelasticEnv, p.Copy.JelasticEnv, err))
		}
		if ci.Status != jelastic.StatusRunning {
			if ci, err = p.Platform.WaitStatus(ctx, p.Copy.JelasticEnv, jelastic.StatusRunning, p.WaitTimeout, p.PollInterval); err != nil {
				return r.fail("clone", fmt.Errorf("wait for %s to run: %w", p.Copy.JelasticEnv, err))
			}
		}
		info = ci
		r.done("clone", fmt.Sprintf("cloned Jelastic environment %s to %s (domain %s); it is running", p.Production.JelasticEnv, p.Copy.JelasticEnv, ci.Domain))
	} else if info.Status != jelastic.StatusRunning {
		r.touched = true
		if err := p.Platform.StartEnv(ctx, p.Copy.JelasticEnv); err != nil {
			return r.fail("start", fmt.Errorf("start %s: %w", p.Copy.JelasticEnv, err))
		}
		if _, err := p.Platform.WaitStatus(ctx, p.Copy.JelasticEnv, jelastic.StatusRunning, p.WaitTimeout, p.PollInterval); err != nil {
			return r.fail("start", fmt.Errorf("wait for %s to run: %w", p.Copy.JelasticEnv, err))
		}
		r.done("start", fmt.Sprintf("started Jelastic environment %s (it was %s)", p.Copy.JelasticEnv, info.Status))
	}
	if p.Settings.WWWRoot == "" {
		p.Settings.WWWRoot = cloneWWWRoot(r.prodWWW, info.Domain)
		if p.Settings.WWWRoot == "" {
			return r.fail("config.php", fmt.Errorf("the platform reports no domain for %s: pass the clone's wwwroot", p.Copy.JelasticEnv))
		}
	}
	r.rep.WWWRoot = p.Settings.WWWRoot

	// 2. Pointed away from production and closed, before anything else:
	// a fresh clone runs, against production's database (hazards H1, H2).
	changed, err := r.rewriteConfig(ctx, "config.php", clone)
	r.touched = r.touched || changed
	if err != nil {
		return r.fail("config.php", err)
	}
	if err := r.maintenanceOn(); err != nil {
		return r.fail("maintenance", err)
	}
	r.touched = true

	// 3. The replay, by the restore code; maintenance stays on.
	ro := p.Restore
	ro.DryRun, ro.KeepMaintenance, ro.DropPrevious = false, true, true
	ro.DBOnly, ro.FilesOnly = false, false
	db := p.Copy.DB
	rrep, err := restore.InPlace(ctx, p.Repo, p.Snapshot, restore.Target{
		Name: r.targetName(), DB: &db, Moodledata: p.Copy.Moodledata, Exclude: p.Exclude,
	}, ro)
	if err != nil {
		return r.fail("restore", err)
	}
	r.rep.Restore = rrep
	r.done("restore", restoreSummary(p.Snapshot, rrep)...)

	// 4. Safe.
	changes, err := Sanitize(ctx, p.Copy.DB, p.Settings)
	if err != nil {
		return r.fail("sanitize", err)
	}
	r.done("sanitize", changes...)
	if _, err := r.rewriteConfig(ctx, "config.php (check)", false); err != nil {
		return r.fail("config.php (check)", err)
	}
	changes, err = cleanMoodledata(p.Copy.Moodledata, host(r.prodWWW), host(p.Settings.WWWRoot))
	if err != nil {
		return r.fail("moodledata", fmt.Errorf("clean moodledata %s: %w", p.Copy.Moodledata, err))
	}
	r.done("moodledata", changes...)

	// 5. Back up.
	if err := p.Platform.RestartNodes(ctx, p.Copy.JelasticEnv, "cp"); err != nil {
		return r.fail("restart", fmt.Errorf("restart the cp nodes of %s: %w", p.Copy.JelasticEnv, err))
	}
	r.done("restart", "restarted the cp (application server) nodes of "+p.Copy.JelasticEnv)
	if err := os.Remove(filepath.Join(p.Copy.Moodledata, maintenanceFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return r.fail("maintenance off", err)
	}
	r.done("maintenance off", "removed "+maintenanceFile+": the copy is open")
	r.rep.Status = StatusOK
	return nil
}

func (r *runner) targetName() string {
	if r.kind == KindRefresh {
		return r.p.Env + "/staging (" + r.p.Copy.JelasticEnv + ")"
	}
	return r.p.Copy.JelasticEnv
}

// productionWWWRoot reads production's wwwroot from its config.php,
// locally or through the API; "" when it cannot be known. Only reads.
func (r *runner) productionWWWRoot(ctx context.Context) string {
	var (
		src []byte
		err error
	)
	if r.p.Production.ConfigPHP != "" {
		src, err = os.ReadFile(r.p.Production.ConfigPHP)
	} else {
		var s string
		s, err = r.p.Platform.ReadFile(ctx, r.p.Production.JelasticEnv, "cp", r.p.RemoteConfigPHP)
		src = []byte(s)
	}
	if err != nil {
		r.p.Log.Debug("production's config.php not readable", "env", r.p.Env, "err", err)
		return ""
	}
	f, err := parseConfigPHP(src)
	if err != nil {
		return ""
	}
	v, _ := f.stringValue("wwwroot")
	return v
}

// cloneWWWRoot is the URL of a clone: production's scheme and path on the
// clone's platform domain.
func cloneWWWRoot(prodWWW, domain string) string {
	if domain == "" {
		return ""
	}
	scheme, path := "https", ""
	if prodWWW != "" {
		if i := strings.Index(prodWWW, "://"); i > 0 {
			scheme = prodWWW[:i]
			if j := strings.Index(prodWWW[i+3:], "/"); j >= 0 {
				path = strings.TrimSuffix(prodWWW[i+3+j:], "/")
			}
		}
	}
	return scheme + "://" + domain + path
}

func (r *runner) maintenanceOn() error {
	md := r.p.Copy.Moodledata
	if fi, err := os.Stat(md); err != nil || !fi.IsDir() {
		return fmt.Errorf("the copy's moodledata %s is not a folder here (does staging.moodledata match the environment?)", md)
	}
	if err := writeFileAtomic(filepath.Join(md, maintenanceFile), refreshingPage(r.kind, r.p.Now()), 0o644); err != nil {
		return fmt.Errorf("maintenance mode for %s: %w", md, err)
	}
	r.done("maintenance", "wrote "+maintenanceFile+": the copy answers 503 and runs no cron until the end")
	return nil
}

// rewriteConfig rewrites the copy's config.php and reports whether it
// changed it (a failed write counts: it may have). After a fresh clone the
// file is production's, and its dataroot may name production's folder as
// mbackup sees it (a shared host, the simulator): then it is pointed at
// the copy's folder. A container path (/var/www/webroot/moodledata) is
// the copy's own on a clone and stays.
func (r *runner) rewriteConfig(ctx context.Context, step string, fresh bool) (changed bool, err error) {
	src, err := r.cfg.read(ctx)
	if err != nil {
		return false, fmt.Errorf("read config.php %s: %w", r.cfg, err)
	}
	f, err := parseConfigPHP(src)
	if err != nil {
		return false, fmt.Errorf("config.php %s: %w", r.cfg, err)
	}
	o := r.p.Settings
	if dr, ok := f.stringValue("dataroot"); ok && o.DataRoot == "" && overlaps(dr, r.p.Production.Moodledata) {
		o.DataRoot = r.p.Copy.Moodledata
	}
	if fresh {
		if w, ok := f.stringValue("wwwroot"); ok && r.prodWWW == "" {
			r.prodWWW = w
		}
	}
	out, changes, err := RewriteConfigPHP(src, o)
	if err != nil {
		return false, fmt.Errorf("config.php %s: %w", r.cfg, err)
	}
	if err := verifyConfig(out, o, r.p.Production); err != nil {
		return false, fmt.Errorf("config.php %s: %w", r.cfg, err)
	}
	if len(changes) == 0 {
		r.done(step, "config.php "+r.cfg.String()+": already points at the copy, e-mail off: unchanged")
		return false, nil
	}
	if err := r.cfg.write(ctx, out); err != nil {
		return true, fmt.Errorf("write config.php %s: %w", r.cfg, err)
	}
	r.done(step, changes...)
	return true, nil
}

// verifyConfig reads the rewritten file back as PHP and checks that it
// points where it must: never at production's database or moodledata.
func verifyConfig(out []byte, o Settings, prod Site) error {
	f, err := parseConfigPHP(out)
	if err != nil {
		return err
	}
	host, _ := f.stringValue("dbhost")
	name, _ := f.stringValue("dbname")
	www, _ := f.stringValue("wwwroot")
	if host != o.DBHost || name != o.DBName || www != o.WWWRoot {
		return fmt.Errorf("rewritten file does not read back as the copy's settings (dbhost %q, dbname %q, wwwroot %q)", host, name, www)
	}
	if pa, err := parseDB(prod.DB); err == nil && (dbAddr{host: host, port: o.DBPort, name: name}).same(pa) {
		return fmt.Errorf("rewritten file still points at production's database %s", prod.DB)
	}
	if dr, ok := f.stringValue("dataroot"); ok && overlaps(dr, prod.Moodledata) {
		return fmt.Errorf("rewritten file still points at production's moodledata %s", dr)
	}
	return nil
}

func restoreSummary(sn *snapshot.Snapshot, rep *restore.Report) []string {
	out := []string{fmt.Sprintf("replayed snapshot %s taken %s", sn.ID().Short(), sn.Time.UTC().Format(time.RFC3339))}
	if d := rep.Database; d != nil {
		s := fmt.Sprintf("database %s: restored into a fresh database and swapped in (%d tables verified)", d.Target, rep.TablesVerified)
		switch {
		case d.PreviousDropped:
			s += "; the previous copy was dropped"
		case d.KeepAs != "":
			s += "; the previous copy is kept as " + d.KeepAs
		}
		out = append(out, s)
	}
	if f := rep.Files; f != nil {
		out = append(out, fmt.Sprintf("moodledata: %d files, %d written, %d removed, %d unchanged, %d verified",
			f.Files, len(f.Write), len(f.Delete), f.Unchanged, rep.FilesVerified))
	}
	return out
}

func (r *runner) done(step string, changes ...string) {
	r.rep.Steps = append(r.rep.Steps, Step{Name: step, Status: StepDone, Changes: changes})
	for _, c := range changes {
		r.p.Log.Info(c, "env", r.p.Env, "step", step)
	}
}

// fail records a failed step. Once the copy has been changed it is
// broken: its climaintenance.html says so, so it stays closed.
func (r *runner) fail(step string, err error) error {
	r.rep.Steps = append(r.rep.Steps, Step{Name: step, Status: StepFailed, Changes: []string{err.Error()}})
	r.rep.FailedStep = step
	if !r.touched {
		r.rep.Status = StatusFailed
		return fmt.Errorf("%s: %w (the copy was not changed)", step, err)
	}
	r.rep.Status = StatusBroken
	marker := filepath.Join(r.p.Copy.Moodledata, maintenanceFile)
	if fi, serr := os.Stat(r.p.Copy.Moodledata); serr == nil && fi.IsDir() {
		werr := writeFileAtomic(marker, brokenPage(r.kind, step, r.p.Now()), 0o644)
		if werr == nil {
			r.rep.BrokenMarker = marker
			return fmt.Errorf("%s: %w; the copy is broken and closed (%s says so)", step, err, marker)
		}
		r.p.Log.Warn("could not mark the copy broken", "file", marker, "err", werr)
	}
	return fmt.Errorf("%s: %w; the copy is broken (no moodledata to mark)", step, err)
}
