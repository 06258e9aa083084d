package jelasticsim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/restore/jelastic"
	"github.com/mbackup/mbackup/restore/jelastic/jelasticsim"
)

const simToken = "sim-token-3c0ffee5ca1ab1e5"

// testPG is the PostgreSQL server the tests use: $MBACKUP_TEST_PG, else
// the local CI server (trust auth, role postgres).
func testPG() string {
	if v := os.Getenv("MBACKUP_TEST_PG"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a simulator on a temporary root behind httptest.
type harness struct {
	t    *testing.T
	root string
	cfg  jelasticsim.Config
	sim  *jelasticsim.Server
	srv  *httptest.Server
	logs *syncBuffer
}

func newHarness(t *testing.T, mod func(*jelasticsim.Config)) *harness {
	t.Helper()
	h := &harness{t: t, root: t.TempDir(), logs: &syncBuffer{}}
	h.cfg = jelasticsim.Config{
		Root:   h.root,
		PG:     testPG(),
		Token:  simToken,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&h.cfg)
	}
	h.start()
	t.Cleanup(func() {
		h.srv.Close()
		if strings.Contains(h.logs.String(), simToken) {
			t.Errorf("simulator logs contain the token:\n%s", h.logs.String())
		}
	})
	return h
}

// start (re)creates the simulator on the same root, as a process restart.
func (h *harness) start() {
	h.t.Helper()
	if h.srv != nil {
		h.srv.Close()
	}
	sim, err := jelasticsim.New(h.cfg)
	if err != nil {
		h.t.Fatalf("jelasticsim.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sim.CheckPG(ctx); err != nil {
		h.t.Fatalf("PostgreSQL for the simulator: %v", err)
	}
	h.sim = sim
	h.srv = httptest.NewServer(sim)
}

func (h *harness) baseURL() string { return h.srv.URL + "/1.0" }

func (h *harness) client(token string) *jelastic.Client {
	return jelastic.New(h.baseURL(), token, jelastic.WithRetry(jelastic.RetryPolicy{MaxAttempts: 1}))
}

// raw sends an API request as given and decodes the envelope into a map,
// checking that the answer is HTTP 200 JSON.
func (h *harness) raw(method, path string, form url.Values) map[string]any {
	h.t.Helper()
	var (
		resp *http.Response
		err  error
	)
	if method == http.MethodGet {
		resp, err = http.Get(h.srv.URL + path + "?" + form.Encode())
	} else {
		resp, err = http.PostForm(h.srv.URL+path, form)
	}
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("%s %s: HTTP %d, want 200 always", method, path, resp.StatusCode)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		h.t.Fatalf("%s %s: body %q is not JSON: %v", method, path, body, err)
	}
	return m
}

func result(m map[string]any) int {
	f, _ := m["result"].(float64)
	return int(f)
}

// uniqueEnv returns a fresh environment name whose database (and that of
// up to two derived names) is dropped when the test ends.
func uniqueEnv(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "t-" + prefix + "-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		for _, n := range []string{name, name + "-c", name + "-d"} {
			adminExec(t, `DROP DATABASE IF EXISTS "`+strings.ReplaceAll(n, "-", "_")+`" WITH (FORCE)`)
		}
	})
	return name
}

func pgConnect(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(testPG())
	if err != nil {
		t.Fatal(err)
	}
	if db != "" {
		cfg.Database = db
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to %s: %v", db, err)
	}
	return conn
}

func adminExec(t *testing.T, sql string) {
	t.Helper()
	conn := pgConnect(t, "")
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func dbExists(t *testing.T, db string) bool {
	t.Helper()
	conn := pgConnect(t, "")
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func dbExec(t *testing.T, db, sql string) {
	t.Helper()
	conn := pgConnect(t, db)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s on %s: %v", sql, db, err)
	}
}

func courseNames(t *testing.T, db string) []string {
	t.Helper()
	conn := pgConnect(t, db)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT fullname FROM mdl_course ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// makeEnv creates a Moodle-like environment: folder with moodledata and
// config.php, and a database with a few rows.
func (h *harness) makeEnv(name string) {
	h.t.Helper()
	dir := filepath.Join(h.root, name)
	db := strings.ReplaceAll(name, "-", "_")
	files := map[string]string{
		"moodledata/filedir/ab/cd/abcd1234": "file content one",
		"moodledata/filedir/ef/01/ef012345": "file content two",
		"moodledata/temp/x.tmp":             "scratch",
		"www/config.php":                    "<?php\n$CFG->dbname = '" + db + "';\n$CFG->wwwroot = 'https://" + name + ".example.ch';\n",
	}
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	adminExec(h.t, `CREATE DATABASE "`+db+`"`)
	dbExec(h.t, db, `CREATE TABLE mdl_course (id serial PRIMARY KEY, fullname text NOT NULL);
		INSERT INTO mdl_course (fullname) VALUES ('Site'), ('Biology 101'), ('History 201')`)
}
