package staging

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/restore/jelastic"
	"github.com/mbackup/mbackup/restore/staging/stagingtest"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

var (
	day1 = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	day2 = day1.Add(24 * time.Hour)
)

// fleet is production client-x-<random> in the simulator, backed up
// twice (day 1, a day of use, day 2).
type fleet struct {
	sim      *stagingtest.Sim
	prod     *stagingtest.Prod
	repoDir  string
	repo     *engine.Repository
	sn1, sn2 *snapshot.Snapshot
	// Production at each snapshot: database and files minus excludes.
	db1, db2       moodlegen.Digest
	files1, files2 map[string]string
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{sim: stagingtest.NewSim(t), repoDir: t.TempDir()}
	f.prod = f.sim.NewProd(t, "client-x", moodlegen.Tiny())
	be, err := local.Open(f.repoDir)
	if err != nil {
		t.Fatal(err)
	}
	f.repo = snapshottest.NewRepo(t, be)
	f.sn1, f.db1, f.files1 = f.backup(t, day1)
	f.prod.Mutate(t, 7)
	f.sn2, f.db2, f.files2 = f.backup(t, day2)
	if len(f.db1.Diff(f.db2)) == 0 {
		t.Fatal("the day of use changed nothing: the test would prove nothing")
	}
	return f
}

func (f *fleet) backup(t *testing.T, at time.Time) (*snapshot.Snapshot, moodlegen.Digest, map[string]string) {
	t.Helper()
	r, err := snapshot.Backup(context.Background(), f.repo, f.prod.Source(), snapshot.Options{Time: at})
	if err != nil {
		t.Fatal(err)
	}
	d, err := moodlegen.DatabaseDigest(context.Background(), f.prod.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	files, err := moodlegen.TreeDigest(f.prod.Moodledata, snapshot.DefaultExclude())
	if err != nil {
		t.Fatal(err)
	}
	return r.Snapshot, d, files
}

func (f *fleet) production() Site {
	return Site{JelasticEnv: f.prod.Name, DB: f.prod.DB(), Moodledata: f.prod.Moodledata, ConfigPHP: f.prod.ConfigPHP}
}

// stagingSite is staging in the simulator's layout.
func (f *fleet) stagingSite(t *testing.T, name string) Site {
	return Site{JelasticEnv: name, DB: postgres.DB{URL: stagingtest.DBURL(t, stagingtest.DBName(name))},
		Moodledata: f.sim.Moodledata(name), ConfigPHP: f.sim.ConfigPHP(name)}
}

func (f *fleet) params(t *testing.T, copy Site, sn *snapshot.Snapshot) Params {
	return Params{
		Env: f.prod.Name, Production: f.production(), Copy: copy,
		Settings: Settings{WWWRoot: "https://" + copy.JelasticEnv + ".example.ch"},
		Exclude:  snapshot.DefaultExclude(), Platform: f.sim.Client(), Repo: f.repo, Snapshot: sn,
		PollInterval: 50 * time.Millisecond, WaitTimeout: time.Minute,
	}
}

// checkCopy asserts that the copy holds the snapshot's data, sanitized,
// and is open.
func (f *fleet) checkCopy(t *testing.T, copy Site, wwwroot string, wantDB moodlegen.Digest, wantFiles map[string]string) {
	t.Helper()
	ctx := context.Background()
	got, err := moodlegen.DatabaseDigest(ctx, copy.DB.URL)
	if err != nil {
		t.Fatal(err)
	}
	if d := stagingtest.Unsanitized(wantDB).Diff(stagingtest.Unsanitized(got)); len(d) > 0 {
		t.Errorf("the copy's database differs from the snapshot's: %s", strings.Join(d, "; "))
	}
	files, err := moodlegen.TreeDigest(copy.Moodledata, append(snapshot.DefaultExclude(), "muc", "saml2"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for k, v := range wantFiles {
		if !strings.HasPrefix(k, "muc/") && k != "muc" && !strings.HasPrefix(k, "saml2/") && k != "saml2" {
			want[k] = v
		}
	}
	if d := moodlegen.DiffTrees(want, files); len(d) > 0 {
		t.Errorf("the copy's moodledata differs from the snapshot's: %s", strings.Join(d[:min(len(d), 10)], "; "))
	}
	for _, rel := range []string{"climaintenance.html", "muc/config.php"} {
		if _, err := os.Stat(filepath.Join(copy.Moodledata, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there (err %v)", rel, err)
		}
	}
	prodHost := strings.TrimPrefix(f.prod.WWWRoot, "https://")
	if _, err := os.Stat(filepath.Join(copy.Moodledata, "saml2", prodHost+".pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("production's SAML key still in the copy")
	}
	src, err := os.ReadFile(copy.ConfigPHP)
	if err != nil {
		t.Fatal(err)
	}
	cfg := assigned(t, src)
	for k, v := range map[string]string{
		"wwwroot": phpString(wwwroot), "dbname": phpString(stagingtest.DBName(copy.JelasticEnv)),
		"dbhost": "'127.0.0.1'", "noemailever": "true", "dataroot": phpString(copy.Moodledata),
	} {
		if cfg[k] != v {
			t.Errorf("copy's config.php: $CFG->%s = %s, want %s", k, cfg[k], v)
		}
	}
	conn, err := pgx.Connect(ctx, copy.DB.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for sql, want := range map[string]int64{
		"SELECT count(*) FROM mdl_sessions":                                                       0,
		"SELECT count(*) FROM mdl_external_tokens":                                                0,
		"SELECT count(*) FROM mdl_task_adhoc":                                                     0,
		"SELECT count(*) FROM mdl_task_scheduled WHERE disabled = 0 AND NOT classname = ANY ($1)": 0,
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = append(args, DefaultAllowedTasks())
		}
		if n := queryInt(t, conn, sql, args...); n != want {
			t.Errorf("%s = %d, want %d", sql, n, want)
		}
	}
	if v := configValue(t, conn, "noemailever"); v != "1" {
		t.Errorf("copy's noemailever = %q", v)
	}
}

func TestRefresh(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t)
	name := f.prod.Name + "-staging"
	st := f.stagingSite(t, name)
	prodBefore := f.prod.Capture(t)

	// Staging does not exist: cloned, then day 1 replayed.
	rep, err := Refresh(ctx, f.params(t, st, f.sn1))
	if err != nil {
		t.Fatalf("refresh: %v\n%+v", err, rep)
	}
	if rep.Status != StatusOK || rep.FailedStep != "" {
		t.Fatalf("status %s, failed step %q", rep.Status, rep.FailedStep)
	}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "clone,config.php,maintenance,restore,sanitize,config.php (check),moodledata,restart,maintenance off" {
		t.Errorf("steps %s", got)
	}
	if !hasChange(rep.Changes(), "$CFG->dbname", stagingtest.DBName(name)) || !hasChange(rep.Changes(), "deleted", "mdl_sessions") {
		t.Errorf("report misses changes: %q", rep.Changes())
	}
	f.checkCopy(t, st, "https://"+name+".example.ch", f.db1, f.files1)
	if n := f.sim.Restarts(t, name, "cp"); n != 1 {
		t.Errorf("cp restarted %d times, want 1", n)
	}
	if rep.Restore == nil || rep.Restore.Database == nil || !rep.Restore.Database.PreviousDropped {
		t.Errorf("the clone's copy of production's database was not dropped: %+v", rep.Restore)
	}
	if left := snapshottest.Databases(t, stagingtest.DBName(name)+"_"); len(left) > 0 {
		t.Errorf("databases left behind: %v", left)
	}
	f.prod.Capture(t).MustEqual(t, prodBefore, "after the first refresh")

	// Staging exists: no clone, day 2 replayed into it.
	rep, err = Refresh(ctx, f.params(t, st, f.sn2))
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	for _, s := range rep.Steps {
		if s.Name == "clone" || s.Name == "delete" {
			t.Errorf("existing staging was %sd", s.Name)
		}
		if s.Name == "config.php (check)" && !hasChange(s.Changes, "unchanged") {
			t.Errorf("config.php changed on the check: %q", s.Changes)
		}
	}
	f.checkCopy(t, st, "https://"+name+".example.ch", f.db2, f.files2)
	if n := f.sim.Restarts(t, name, "cp"); n != 2 {
		t.Errorf("cp restarted %d times, want 2", n)
	}

	// --reclone: deleted and cloned again; a marker file in the old
	// copy proves it went.
	marker := filepath.Join(st.Moodledata, "filedir", "old-copy-marker")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := f.params(t, st, f.sn1)
	p.Reclone = true
	rep, err = Refresh(ctx, p)
	if err != nil {
		t.Fatalf("reclone: %v", err)
	}
	if len(rep.Steps) < 2 || rep.Steps[0].Name != "delete" || rep.Steps[1].Name != "clone" {
		t.Errorf("reclone steps: %+v", rep.Steps)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Error("the old copy survived --reclone")
	}
	f.checkCopy(t, st, "https://"+name+".example.ch", f.db1, f.files1)
	if n := f.sim.Restarts(t, name, "cp"); n != 1 {
		t.Errorf("a fresh clone restarted %d times, want 1", n)
	}
	f.prod.Capture(t).MustEqual(t, prodBefore, "after all refreshes")
}

func TestRefreshDryRun(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t)
	name := f.prod.Name + "-staging"
	st := f.stagingSite(t, name)
	prodBefore := f.prod.Capture(t)
	p := f.params(t, st, f.sn1)
	p.DryRun = true
	rep, err := Refresh(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != StatusPlanned {
		t.Errorf("status %s", rep.Status)
	}
	if _, err := f.sim.Client().GetEnvInfo(ctx, name); !jelastic.IsNotExist(err) {
		t.Errorf("a dry run created the staging environment (err %v)", err)
	}
	if !hasChange(rep.Changes(), "clone "+f.prod.Name+" to "+name) || !hasChange(rep.Changes(), "$CFG->dbname", stagingtest.DBName(name)) {
		t.Errorf("plan: %q", rep.Changes())
	}
	f.prod.Capture(t).MustEqual(t, prodBefore, "after a dry run")
}

// faultPlatform fails one call, for the half-way failure tests.
type faultPlatform struct {
	Platform
	failRestart bool
}

func (p faultPlatform) RestartNodes(ctx context.Context, env, group string) error {
	if p.failRestart {
		return &jelastic.Error{Code: jelastic.CodeUnknown, Message: "injected failure", Method: "environment.control.RestartNodes", Env: env}
	}
	return p.Platform.RestartNodes(ctx, env, group)
}

func TestRefreshFailsHalfWay(t *testing.T) {
	tests := []struct {
		name   string
		step   string
		inject func(t *testing.T, f *fleet, p *Params)
	}{
		{"restart fails", "restart", func(t *testing.T, f *fleet, p *Params) {
			p.Platform = faultPlatform{Platform: p.Platform, failRestart: true}
		}},
		{"repository damaged", "restore", func(t *testing.T, f *fleet, p *Params) {
			if err := os.RemoveAll(filepath.Join(f.repoDir, "data")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(t)
			name := f.prod.Name + "-staging"
			st := f.stagingSite(t, name)
			prodBefore := f.prod.Capture(t)
			p := f.params(t, st, f.sn1)
			tt.inject(t, f, &p)
			rep, err := Refresh(context.Background(), p)
			if err == nil {
				t.Fatal("refresh succeeded")
			}
			if rep == nil || rep.Status != StatusBroken || rep.FailedStep != tt.step {
				t.Fatalf("report %+v, want status broken at %s", rep, tt.step)
			}
			page, rerr := os.ReadFile(filepath.Join(st.Moodledata, "climaintenance.html"))
			if rerr != nil || !strings.Contains(string(page), "broken") || rep.BrokenMarker == "" {
				t.Errorf("copy not marked broken: %v %q", rerr, page)
			}
			if !strings.Contains(err.Error(), "broken") {
				t.Errorf("error does not say the copy is broken: %v", err)
			}
			// Even half-way, config.php already points at the copy.
			src, _ := os.ReadFile(st.ConfigPHP)
			if cfg := assigned(t, src); cfg["dbname"] != phpString(stagingtest.DBName(name)) || cfg["noemailever"] != "true" {
				t.Errorf("half-refreshed copy's config.php: dbname %s, noemailever %s", cfg["dbname"], cfg["noemailever"])
			}
			f.prod.Capture(t).MustEqual(t, prodBefore, "after a failed refresh")

			// A later successful refresh opens the copy again.
			if tt.step == "restart" {
				p.Platform = f.sim.Client()
				if _, err := Refresh(context.Background(), p); err != nil {
					t.Fatalf("refresh after the failure: %v", err)
				}
				f.checkCopy(t, st, "https://"+name+".example.ch", f.db1, f.files1)
			}
		})
	}
}

func TestSideRestore(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t)
	prodBefore := f.prod.Capture(t)
	clone, err := DeriveClone(f.production(), f.prod.Name+"-copy")
	if err != nil {
		t.Fatal(err)
	}
	if want := f.stagingSite(t, f.prod.Name+"-copy"); clone != want {
		t.Fatalf("derived %+v, want %+v", clone, want)
	}
	p := f.params(t, clone, f.sn1)
	p.Settings = Settings{}
	rep, err := SideRestore(ctx, p)
	if err != nil {
		t.Fatalf("side restore: %v", err)
	}
	wantWWW := "https://" + clone.JelasticEnv + ".sim.local"
	if rep.WWWRoot != wantWWW {
		t.Errorf("wwwroot %s, want the clone's platform domain %s", rep.WWWRoot, wantWWW)
	}
	f.checkCopy(t, clone, wantWWW, f.db1, f.files1)
	f.prod.Capture(t).MustEqual(t, prodBefore, "after a side restore")

	// The name is taken now: a second side restore is refused.
	if _, err := SideRestore(ctx, p); !IsRefused(err) {
		t.Errorf("side restore into an existing environment: %v", err)
	}
}

// noPlatform fails the test on any call: refusals come before the API.
type noPlatform struct {
	Platform
	t *testing.T
}

func (p noPlatform) GetEnvInfo(context.Context, string) (*jelastic.EnvInfo, error) {
	p.t.Error("the platform was called before the refusal")
	return nil, errors.New("no")
}

func (p noPlatform) ReadFile(context.Context, string, string, string) (string, error) {
	return "", errors.New("no")
}

func TestRefreshRefusals(t *testing.T) {
	dir := t.TempDir()
	prodCfg := filepath.Join(dir, "client-x", "www", "config.php")
	if err := moodlegen.WriteConfigPHP(prodCfg, moodlegen.ConfigPHP{DBName: "client_x", DataRoot: filepath.Join(dir, "client-x", "moodledata"), WWWRoot: "https://client-x.example.ch"}); err != nil {
		t.Fatal(err)
	}
	prod := Site{JelasticEnv: "client-x", DB: postgres.DB{URL: "postgres://moodle@db.example.ch:5432/client_x"},
		Moodledata: filepath.Join(dir, "client-x", "moodledata"), ConfigPHP: prodCfg}
	good := Site{JelasticEnv: "client-x-staging", DB: postgres.DB{URL: "postgres://moodle@db.example.ch:5432/client_x_staging"},
		Moodledata: filepath.Join(dir, "client-x-staging", "moodledata"), ConfigPHP: filepath.Join(dir, "client-x-staging", "www", "config.php")}
	with := func(mod func(s *Site, o *Settings)) (Site, Settings) {
		s, o := good, Settings{WWWRoot: "https://client-x-staging.example.ch"}
		mod(&s, &o)
		return s, o
	}
	tests := []struct {
		name string
		mod  func(s *Site, o *Settings)
		want string
	}{
		{"staging env is production's", func(s *Site, _ *Settings) { s.JelasticEnv = "client-x" }, "Jelastic environment"},
		{"staging env is production's, other case", func(s *Site, _ *Settings) { s.JelasticEnv = "Client-X" }, "Jelastic environment"},
		{"staging database is production's", func(s *Site, _ *Settings) { s.DB = prod.DB }, "production's database"},
		{"staging database is production's by another name of the host", func(s *Site, _ *Settings) {
			s.DB = postgres.DB{URL: "postgres://other@DB.example.ch/client_x?sslmode=require"}
		}, "production's database"},
		{"config.php would point at production", func(_ *Site, o *Settings) { o.DBHost, o.DBName = "db.example.ch", "client_x" }, "point at production's database"},
		{"staging moodledata is production's", func(s *Site, _ *Settings) { s.Moodledata = prod.Moodledata }, "moodledata"},
		{"staging moodledata inside production's", func(s *Site, _ *Settings) { s.Moodledata = filepath.Join(prod.Moodledata, "staging") }, "moodledata"},
		{"staging config.php is production's", func(s *Site, _ *Settings) { s.ConfigPHP = prodCfg }, "config.php"},
		{"staging wwwroot is production's", func(_ *Site, o *Settings) { o.WWWRoot = "https://client-x.example.ch" }, "wwwroot"},
		{"no staging wwwroot", func(_ *Site, o *Settings) { o.WWWRoot = "" }, "wwwroot"},
		{"clone name too long", func(s *Site, _ *Settings) { s.JelasticEnv = strings.Repeat("x", 40) }, "Jelastic environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, o := with(tt.mod)
			for _, dry := range []bool{false, true} {
				rep, err := Refresh(context.Background(), Params{
					Env: "client-x", Production: prod, Copy: s, Settings: o, Platform: noPlatform{t: t},
					DryRun: dry,
				})
				if !IsRefused(err) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want a refusal about %s", err, tt.want)
				}
				if rep.Status != StatusFailed || len(rep.Steps) != 0 {
					t.Errorf("report %+v", rep)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "client-x-staging")); !errors.Is(err, os.ErrNotExist) {
				t.Error("a refused refresh wrote files")
			}
		})
	}
}

func TestDeriveClone(t *testing.T) {
	prod := Site{JelasticEnv: "client-x", DB: postgres.DB{URL: "postgres://moodle:pw@db.client-x.internal:5433/moodle?sslmode=require", Password: "filepw"},
		Moodledata: "/srv/client-x/moodledata", ConfigPHP: "/srv/client-x/www/config.php"}
	tests := []struct {
		name    string
		prod    func(s *Site)
		newEnv  string
		wantDB  string
		wantMD  string
		wantErr string
	}{
		{name: "host label", newEnv: "client-x-copy", wantDB: "postgres://moodle:pw@db.client-x-copy.internal:5433/moodle?sslmode=require", wantMD: "/srv/client-x-copy/moodledata"},
		{name: "database name, simulator layout", prod: func(s *Site) {
			s.DB.URL = "postgres://postgres@127.0.0.1:5432/client_x?sslmode=disable"
		}, newEnv: "client-x-copy", wantDB: "postgres://postgres@127.0.0.1:5432/client_x_copy?sslmode=disable", wantMD: "/srv/client-x-copy/moodledata"},
		{name: "database not derivable", prod: func(s *Site) { s.DB.URL = "postgres://u@db.internal/moodle" }, newEnv: "c2", wantErr: "cannot derive the clone's database"},
		{name: "moodledata not derivable", prod: func(s *Site) { s.Moodledata = "/srv/moodledata" }, newEnv: "c2", wantErr: "moodledata"},
		{name: "a partial name is not the name", prod: func(s *Site) { s.Moodledata = "/srv/client-x-old/moodledata" }, newEnv: "c2", wantErr: "moodledata"},
		{name: "same name", newEnv: "client-x", wantErr: "production's"},
		{name: "bad name", newEnv: "-x", wantErr: "clone name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prod
			if tt.prod != nil {
				tt.prod(&p)
			}
			got, err := DeriveClone(p, tt.newEnv)
			if tt.wantErr != "" {
				if !IsRefused(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a refusal about %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DB.URL != tt.wantDB || got.DB.Password != "filepw" || got.Moodledata != tt.wantMD || got.JelasticEnv != tt.newEnv ||
				got.ConfigPHP != strings.Replace(p.ConfigPHP, "client-x", tt.newEnv, 1) {
				t.Errorf("got %+v", got)
			}
		})
	}
}

// Without local config.php paths, config.php is read and written through
// the platform's file API on the cp node.
func TestRefreshConfigThroughAPI(t *testing.T) {
	f := newFleet(t)
	name := f.prod.Name + "-staging"
	st := f.stagingSite(t, name)
	prodBefore := f.prod.Capture(t)
	p := f.params(t, Site{JelasticEnv: st.JelasticEnv, DB: st.DB, Moodledata: st.Moodledata}, f.sn1)
	p.Production.ConfigPHP = ""
	rep, err := Refresh(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Config != name+":"+DefaultRemoteConfigPHP {
		t.Errorf("config.php reached as %q", rep.Config)
	}
	f.checkCopy(t, st, "https://"+name+".example.ch", f.db1, f.files1)
	f.prod.Capture(t).MustEqual(t, prodBefore, "after a refresh through the API")
}
