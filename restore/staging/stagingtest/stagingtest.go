// Package stagingtest runs jelastic-sim in-process on a temporary root
// with the real PostgreSQL server, and creates Moodle-like production
// environments in it, for the tests of staging refreshes and side
// restores (package staging and the CLI).
package stagingtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mbackup/mbackup/restore/jelastic"
	"github.com/mbackup/mbackup/restore/jelastic/jelasticsim"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
	"github.com/mbackup/mbackup/snapshot/snapshottest"
)

// Token is the simulator's access token.
const Token = "stagingtest-token-5f3a9c0e7d21"

// Sim is a running simulator.
type Sim struct {
	Root  string // one folder per environment
	URL   string // API base, ending in /1.0
	Admin string // a superuser's URL on the simulator's PostgreSQL server
}

// NewSim starts a simulator on a temporary root with the test server
// (snapshottest.AdminURL); it stops when the test ends.
func NewSim(t testing.TB) *Sim {
	t.Helper()
	return NewSimOn(t, snapshottest.AdminURL())
}

// NewSimOn is NewSim on the PostgreSQL server that adminURL, a
// superuser's URL with its password, reaches.
func NewSimOn(t testing.TB, adminURL string) *Sim {
	t.Helper()
	root := t.TempDir()
	sim, err := jelasticsim.New(jelasticsim.Config{Root: root, PG: adminURL, Token: Token})
	if err != nil {
		t.Fatalf("jelasticsim: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sim.CheckPG(ctx); err != nil {
		t.Fatalf("PostgreSQL for the simulator: %v", err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &Sim{Root: root, URL: srv.URL + "/1.0", Admin: adminURL}
}

// Client returns an API client for the simulator without retries.
func (s *Sim) Client() *jelastic.Client {
	return jelastic.New(s.URL, Token, jelastic.WithRetry(jelastic.RetryPolicy{MaxAttempts: 1}))
}

// EnvDir is the folder of environment name.
func (s *Sim) EnvDir(name string) string { return filepath.Join(s.Root, name) }

// Moodledata and ConfigPHP are an environment's paths in the simulator.
func (s *Sim) Moodledata(name string) string { return filepath.Join(s.Root, name, "moodledata") }
func (s *Sim) ConfigPHP(name string) string  { return filepath.Join(s.Root, name, "www", "config.php") }

// DBName is the database of environment name in the simulator.
func DBName(env string) string { return strings.ReplaceAll(env, "-", "_") }

// DBURL is the URL of a database on the test server.
func DBURL(t testing.TB, name string) string {
	t.Helper()
	return dbURL(t, snapshottest.AdminURL(), name)
}

// DBURL is the URL of a database on the simulator's server, with the
// superuser's credentials.
func (s *Sim) DBURL(t testing.TB, name string) string {
	t.Helper()
	return dbURL(t, s.Admin, name)
}

func dbURL(t testing.TB, adminURL, name string) string {
	t.Helper()
	u, err := moodlegen.DatabaseURL(adminURL, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Restarts returns how often the simulator restarted the nodes of group
// in env (from its state file).
func (s *Sim) Restarts(t testing.TB, env, group string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.EnvDir(env), ".jelastic-sim.json"))
	if err != nil {
		t.Fatalf("simulator state of %s: %v", env, err)
	}
	var st struct {
		Nodes []struct {
			NodeGroup string `json:"nodeGroup"`
			Restarts  int    `json:"restarts"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("simulator state of %s: %v", env, err)
	}
	n := 0
	for _, nd := range st.Nodes {
		if nd.NodeGroup == group {
			n += nd.Restarts
		}
	}
	return n
}

// Prod is a production environment in the simulator.
type Prod struct {
	Name       string // Jelastic environment, e.g. client-x-1a2b3c
	DBName     string
	DBURL      string
	Moodledata string
	ConfigPHP  string
	WWWRoot    string
	Spec       moodlegen.Spec

	admin string // the simulator's superuser URL
}

// NewProd creates environment base-<random> in the simulator: the
// database (named after it, "-" as "_"), moodledata and www/config.php
// pointing at both. Every database whose name starts with the
// environment's is dropped when the test ends, so staging copies and
// clones named <name>-... are cleaned up too.
func (s *Sim) NewProd(t testing.TB, base string, spec moodlegen.Spec) *Prod {
	t.Helper()
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := base + "-" + hex.EncodeToString(b[:])
	p := &Prod{Name: name, DBName: DBName(name), Moodledata: s.Moodledata(name), ConfigPHP: s.ConfigPHP(name),
		WWWRoot: "https://" + name + ".example.ch", Spec: spec, admin: s.Admin}
	spec.WWWRoot = p.WWWRoot
	p.Spec = spec
	t.Cleanup(func() { snapshottest.DropDatabasesOn(t, s.Admin, p.DBName) })
	ctx := context.Background()
	if err := moodlegen.CreateDatabase(ctx, s.Admin, p.DBName, spec); err != nil {
		t.Fatalf("create database %s: %v", p.DBName, err)
	}
	p.DBURL = s.DBURL(t, p.DBName)
	if _, err := moodlegen.CreateMoodledata(p.Moodledata, spec); err != nil {
		t.Fatalf("create moodledata: %v", err)
	}
	cp, err := moodlegen.ConfigFromURL(s.Admin, p.DBName, p.Moodledata)
	if err != nil {
		t.Fatal(err)
	}
	cp.WWWRoot = p.WWWRoot
	cp.DBPass = "prod-secret-Pa55"
	if err := moodlegen.WriteConfigPHP(p.ConfigPHP, cp); err != nil {
		t.Fatal(err)
	}
	return p
}

// DB returns production's database.
func (p *Prod) DB() postgres.DB { return postgres.DB{URL: p.DBURL} }

// Source is what snapshot.Backup needs to back production up.
func (p *Prod) Source() snapshot.Source {
	db := p.DB()
	return snapshot.Source{Env: p.Name, DB: &db, Moodledata: p.Moodledata, ConfigPHP: p.ConfigPHP, Exclude: snapshot.DefaultExclude()}
}

// Mutate simulates a day of use in production.
func (p *Prod) Mutate(t testing.TB, seed uint64) {
	t.Helper()
	if _, err := moodlegen.Mutate(context.Background(), p.admin, p.DBName, p.Moodledata, p.Spec, moodlegen.Mutation{Seed: seed}); err != nil {
		t.Fatalf("mutate %s: %v", p.Name, err)
	}
}

// State fingerprints production: every row and every file (nothing
// excluded), plus config.php.
type State struct {
	DB        moodlegen.Digest
	Files     map[string]string
	ConfigPHP string
}

// Capture returns the state of production.
func (p *Prod) Capture(t testing.TB) State {
	t.Helper()
	d, err := moodlegen.DatabaseDigest(context.Background(), p.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	files, err := moodlegen.TreeDigest(p.Moodledata, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(p.ConfigPHP)
	if err != nil {
		t.Fatal(err)
	}
	return State{DB: d, Files: files, ConfigPHP: string(cp)}
}

// MustEqual fails the test when production changed.
func (s State) MustEqual(t testing.TB, got State, when string) {
	t.Helper()
	if d := s.DB.Diff(got.DB); len(d) > 0 {
		t.Errorf("%s: production's database changed: %s", when, strings.Join(d, "; "))
	}
	if d := moodlegen.DiffTrees(s.Files, got.Files); len(d) > 0 {
		t.Errorf("%s: production's moodledata changed: %s", when, strings.Join(d, "; "))
	}
	if s.ConfigPHP != got.ConfigPHP {
		t.Errorf("%s: production's config.php changed", when)
	}
}

// SanitizedTables are the tables a sanitized copy changes; every other
// table must equal the snapshot's.
var SanitizedTables = []string{
	"mdl_config", "mdl_config_plugins", "mdl_task_scheduled", "mdl_task_adhoc", "mdl_sessions",
	"mdl_external_tokens", "mdl_user_private_key", "mdl_message_processors", "mdl_oauth2_issuer",
	"mdl_payment_accounts", "mdl_payment_gateways",
}

// Unsanitized returns d without the sanitized tables and their sequences.
func Unsanitized(d moodlegen.Digest) moodlegen.Digest {
	out := moodlegen.Digest{Tables: map[string]moodlegen.TableDigest{}, Sequences: map[string]int64{}, Schema: d.Schema}
	sanitized := func(name string) bool {
		for _, s := range SanitizedTables {
			if name == s || name == s+"_id_seq" {
				return true
			}
		}
		return false
	}
	for k, v := range d.Tables {
		if !sanitized(k) {
			out.Tables[k] = v
		}
	}
	for k, v := range d.Sequences {
		if !sanitized(k) {
			out.Sequences[k] = v
		}
	}
	return out
}
