package moodlegen_test

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/scripts/moodlegen"
)

// adminURL is the real PostgreSQL the tests use; MBACKUP_TEST_PG overrides it.
func adminURL() string {
	if u := os.Getenv("MBACKUP_TEST_PG"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres"
}

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// newDB returns a database name unique to this test run and drops the
// database when the test ends.
func newDB(t testing.TB) (name, url string) {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	base := nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
	name = fmt.Sprintf("mgtest_%.30s_%s", base, hex.EncodeToString(b))
	url, err := moodlegen.DatabaseURL(adminURL(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := moodlegen.DropDatabase(context.Background(), adminURL(), name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name, url
}

// environment creates a database and a moodledata folder from spec.
func environment(t testing.TB, spec moodlegen.Spec) (dbName, dbURL, dir string, st moodlegen.Stats) {
	t.Helper()
	ctx := context.Background()
	dbName, dbURL = newDB(t)
	if err := moodlegen.CreateDatabase(ctx, adminURL(), dbName, spec); err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	dir = filepath.Join(t.TempDir(), "moodledata")
	st, err := moodlegen.CreateMoodledata(dir, spec)
	if err != nil {
		t.Fatalf("CreateMoodledata: %v", err)
	}
	return dbName, dbURL, dir, st
}

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryInt(t testing.TB, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestCreateDatabaseTiny(t *testing.T) {
	spec := moodlegen.Tiny()
	ctx := context.Background()
	name, url := newDB(t)
	// Twice: the second run must replace the first, even with a session open.
	if err := moodlegen.CreateDatabase(ctx, adminURL(), name, spec); err != nil {
		t.Fatal(err)
	}
	idle := connect(t, url)
	if err := moodlegen.CreateDatabase(ctx, adminURL(), name, spec); err != nil {
		t.Fatalf("re-create with a session open: %v", err)
	}
	if err := idle.Ping(ctx); err == nil {
		t.Error("the old database's session survived its replacement")
	}
	conn := connect(t, url)

	counts := []struct {
		query string
		want  int64
	}{
		{"SELECT count(*) FROM mdl_user", int64(spec.Users + 2)},
		{"SELECT count(*) FROM mdl_course", int64(spec.Courses + 1)},
		{"SELECT count(*) FROM mdl_logstore_standard_log", int64(spec.LogRows)},
		{"SELECT count(*) FROM mdl_files WHERE filename <> '.'", int64(spec.Files)},
		{"SELECT count(*) FROM mdl_task_scheduled WHERE disabled = 0", queryInt(t, conn, "SELECT count(*) FROM mdl_task_scheduled")},
		{"SELECT count(*) FROM mdl_config WHERE name = 'version' AND value = '2024100700.00'", 1},
		{"SELECT count(*) FROM mdl_config WHERE name = 'release' AND value = '4.5 (Build: 20241007)'", 1},
		{"SELECT count(*) FROM mdl_config WHERE name = 'cron_enabled' AND value = '1'", 1},
		{"SELECT count(*) FROM mdl_config WHERE name = 'maintenance_enabled' AND value = '0'", 1},
		{"SELECT count(*) FROM mdl_config WHERE name IN ('siteidentifier', 'smtphosts', 'smtppass')", 3},
		{"SELECT count(*) FROM mdl_config WHERE name = 'noemailever'", 0},
		{"SELECT count(*) FROM mdl_config_plugins WHERE (plugin, name) IN (('auth_ldap', 'bind_pw'), ('enrol_database', 'dbhost'))", 2},
		{"SELECT count(*) FROM mdl_message_processors WHERE name IN ('email', 'airnotifier', 'popup') AND enabled = 1", 3},
		{"SELECT count(*) FROM mdl_user WHERE id = 2 AND username = 'admin'", 1},
		{"SELECT count(*) FROM mdl_files WHERE contenthash !~ '^[0-9a-f]{40}$' OR pathnamehash !~ '^[0-9a-f]{40}$'", 0},
		{"SELECT count(*) FROM mdl_files WHERE filename = '.' AND (filesize <> 0 OR contenthash <> 'da39a3ee5e6b4b0d3255bfef95601890afd80709')", 0},
	}
	for _, c := range counts {
		if got := queryInt(t, conn, c.query); got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
	for _, q := range []string{
		"SELECT count(*) FROM mdl_task_scheduled",
		"SELECT count(*) FROM mdl_task_adhoc",
		"SELECT count(*) FROM mdl_sessions",
		"SELECT count(*) FROM mdl_external_tokens",
		"SELECT count(*) FROM mdl_user_private_key",
	} {
		if queryInt(t, conn, q) == 0 {
			t.Errorf("%s = 0, want rows", q)
		}
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM mdl_task_scheduled"); n < 30 {
		t.Errorf("mdl_task_scheduled has %d tasks, want at least 30", n)
	}
	// Sequences continue after the loaded ids, as in a real Moodle database.
	var id int64
	if err := conn.QueryRow(ctx, "INSERT INTO mdl_config (name, value) VALUES ('probe', 'x') RETURNING id").Scan(&id); err != nil {
		t.Fatalf("insert with default id: %v", err)
	}
	if max := queryInt(t, conn, "SELECT max(id) FROM mdl_config WHERE name <> 'probe'"); id != max+1 {
		t.Errorf("next mdl_config id = %d, want %d", id, max+1)
	}
	st, err := moodlegen.InspectDatabase(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if st.ByTable["mdl_logstore_standard_log"] != int64(spec.LogRows) || st.Tables < 15 || st.Bytes <= 0 {
		t.Errorf("InspectDatabase = %d tables, %d log rows, %d bytes", st.Tables, st.ByTable["mdl_logstore_standard_log"], st.Bytes)
	}
}

// checkFiledir asserts that every referenced content is in filedir/ with
// the right name and size.
func checkFiledir(t *testing.T, conn *pgx.Conn, dir string) (referenced map[string]bool) {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT DISTINCT contenthash, filesize FROM mdl_files WHERE filesize > 0 ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	var hash string
	var size int64
	referenced = map[string]bool{}
	if _, err := pgx.ForEachRow(rows, []any{&hash, &size}, func() error {
		referenced[hash] = true
		p := filepath.Join(dir, "filedir", hash[:2], hash[2:4], hash)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("mdl_files content %s: %v", hash, err)
			return nil
		}
		if sum := sha1.Sum(data); hex.EncodeToString(sum[:]) != hash {
			t.Errorf("%s: content has sha1 %x", p, sum)
		}
		if int64(len(data)) != size {
			t.Errorf("%s: %d bytes, mdl_files says %d", p, len(data), size)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return referenced
}

func TestFilesMatchFiledir(t *testing.T) {
	spec := moodlegen.Tiny()
	_, url, dir, st := environment(t, spec)
	conn := connect(t, url)
	referenced := checkFiledir(t, conn, dir)
	if len(referenced) == 0 {
		t.Fatal("no content referenced")
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM mdl_files WHERE filename <> '.' AND filesize = 0"); n == 0 {
		t.Error("no empty file: the virtual empty-content hash is not exercised")
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM (SELECT contenthash FROM mdl_files WHERE filesize > 0 GROUP BY 1 HAVING count(*) > 1) d"); n == 0 {
		t.Error("no content shared by two rows: dedup is not exercised")
	}
	// filedir holds nothing but referenced content and warning.txt.
	var onDisk int64
	err := filepath.WalkDir(filepath.Join(dir, "filedir"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "warning.txt" {
			return err
		}
		onDisk++
		if !referenced[d.Name()] {
			t.Errorf("orphan in filedir: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if onDisk != int64(len(referenced)) || st.FiledirFiles != onDisk {
		t.Errorf("filedir holds %d files, Stats.FiledirFiles = %d, %d contents referenced", onDisk, st.FiledirFiles, len(referenced))
	}
	// trashdir content is named by its hash too, and referenced by nothing.
	var trash int
	err = filepath.WalkDir(filepath.Join(dir, "trashdir"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		trash++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if sum := sha1.Sum(data); hex.EncodeToString(sum[:]) != d.Name() {
			t.Errorf("%s: content has sha1 %x", p, sum)
		}
		if referenced[d.Name()] {
			t.Errorf("%s is in trash but referenced", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if trash != spec.TrashFiles {
		t.Errorf("trashdir holds %d files, want %d", trash, spec.TrashFiles)
	}
}

func TestMoodledataLayout(t *testing.T) {
	spec := moodlegen.Tiny()
	dir := filepath.Join(t.TempDir(), "md")
	st, err := moodlegen.CreateMoodledata(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := moodlegen.TreeDigest(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ path, prefix string }{
		{"filedir/warning.txt", "file 0644 "},
		{".htaccess", "file 0644 "},
		{"muc/config.php", "file 0640 "},
		{"secret/key/sodium.key", "file 0600 "},
		{"secret", "dir 0700"},
		{"lang/current", "symlink -> en_local"},
		{"models/latest", "symlink -> 1"},
		{"repository/archive", "symlink -> /srv/shared/moodle-archive"},
		{"antivirus_quarantine", "dir "},
		{"lang/en_local/moodle.php", "file "},
	} {
		if got := tree[want.path]; !strings.HasPrefix(got, want.prefix) {
			t.Errorf("%s: %q, want prefix %q", want.path, got, want.prefix)
		}
	}
	junk := map[string]int{}
	modes := map[string]bool{}
	for p, v := range tree {
		top, _, _ := strings.Cut(p, "/")
		if strings.HasPrefix(v, "file ") {
			junk[top]++
			modes[strings.Fields(v)[1]] = true
		}
	}
	for _, d := range []struct {
		dir  string
		want int
	}{{"cache", spec.Junk.Cache}, {"localcache", spec.Junk.LocalCache}, {"sessions", spec.Junk.Sessions}, {"lock", spec.Junk.Lock}} {
		// Temp work folders hold one or two files; random names may collide.
		if junk[d.dir] < d.want-1 || junk[d.dir] > d.want+1 {
			t.Errorf("%s/ holds %d files, want about %d", d.dir, junk[d.dir], d.want)
		}
	}
	if junk["temp"] < spec.Junk.Temp {
		t.Errorf("temp/ holds %d files, want at least %d", junk["temp"], spec.Junk.Temp)
	}
	if len(modes) < 3 {
		t.Errorf("file modes %v: want variety", modes)
	}
	if st.Bytes > 1<<20 || st.Bytes < 100<<10 {
		t.Errorf("Tiny moodledata is %d bytes, want a few hundred KB", st.Bytes)
	}
	var sum int64
	for p, v := range tree {
		if strings.HasPrefix(v, "file ") {
			fi, err := os.Lstat(filepath.Join(dir, p))
			if err != nil {
				t.Fatal(err)
			}
			sum += fi.Size()
			if !fi.ModTime().Before(time.Unix(moodlegen.DefaultEpochUnix+1, 0)) {
				t.Errorf("%s: mtime %v is not in the past of the epoch", p, fi.ModTime())
			}
		}
	}
	if sum != st.Bytes || st.Symlinks != 3 {
		t.Errorf("Stats says %d bytes, %d symlinks; tree has %d bytes", st.Bytes, st.Symlinks, sum)
	}

	if _, err := moodlegen.CreateMoodledata(dir, spec); err == nil {
		t.Error("CreateMoodledata into a non-empty folder succeeded")
	}
}

// mtimes returns the mtime of every file and directory below dir.
func mtimes(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fi.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterminism(t *testing.T) {
	ctx := context.Background()
	spec := moodlegen.Tiny()
	other := spec
	other.Seed = 2
	_, urlA, dirA, _ := environment(t, spec)
	_, urlB, dirB, _ := environment(t, spec)
	_, urlC, dirC, _ := environment(t, other)

	treeA, err := moodlegen.TreeDigest(dirA, nil)
	if err != nil {
		t.Fatal(err)
	}
	treeB, err := moodlegen.TreeDigest(dirB, nil)
	if err != nil {
		t.Fatal(err)
	}
	treeC, err := moodlegen.TreeDigest(dirC, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := moodlegen.DiffTrees(treeA, treeB); len(d) > 0 {
		t.Errorf("same seed, different trees:\n%s", strings.Join(d, "\n"))
	}
	if len(moodlegen.DiffTrees(treeA, treeC)) == 0 {
		t.Error("different seeds, identical trees")
	}
	ma, mb := mtimes(t, dirA), mtimes(t, dirB)
	for p, a := range ma {
		if !a.Equal(mb[p]) {
			t.Errorf("%s: mtime %v vs %v", p, a, mb[p])
		}
	}

	dA, err := moodlegen.DatabaseDigest(ctx, urlA)
	if err != nil {
		t.Fatal(err)
	}
	dB, err := moodlegen.DatabaseDigest(ctx, urlB)
	if err != nil {
		t.Fatal(err)
	}
	dC, err := moodlegen.DatabaseDigest(ctx, urlC)
	if err != nil {
		t.Fatal(err)
	}
	if d := dA.Diff(dB); len(d) > 0 {
		t.Errorf("same seed, different databases:\n%s", strings.Join(d, "\n"))
	}
	if len(dA.Diff(dC)) == 0 {
		t.Error("different seeds, identical databases")
	}
	// Physical order is not part of the digest; content is, to the row.
	connB := connect(t, urlB)
	if _, err := connB.Exec(ctx, "CLUSTER mdl_user USING mdl_user_ema_ix; CLUSTER mdl_logstore_standard_log USING mdl_logsstanlog_con_ix"); err != nil {
		t.Fatal(err)
	}
	if dB, err = moodlegen.DatabaseDigest(ctx, urlB); err != nil {
		t.Fatal(err)
	}
	if d := dA.Diff(dB); len(d) > 0 {
		t.Errorf("reordering rows changed the digest:\n%s", strings.Join(d, "\n"))
	}
	if _, err := connB.Exec(ctx, "UPDATE mdl_user SET city = city || 'x' WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	if dB, err = moodlegen.DatabaseDigest(ctx, urlB); err != nil {
		t.Fatal(err)
	}
	if d := dA.Diff(dB); len(d) != 1 || !strings.Contains(d[0], "mdl_user") {
		t.Errorf("one changed row: diff = %q, want one line about mdl_user", d)
	}
	if _, err := connB.Exec(ctx, "SELECT nextval('mdl_course_id_seq'); CREATE INDEX extra_ix ON mdl_course (fullname)"); err != nil {
		t.Fatal(err)
	}
	if dB, err = moodlegen.DatabaseDigest(ctx, urlB); err != nil {
		t.Fatal(err)
	}
	if d := strings.Join(dA.Diff(dB), "\n"); !strings.Contains(d, "sequence mdl_course_id_seq") || !strings.Contains(d, "schema differs") {
		t.Errorf("sequence and index change: diff = %q", d)
	}
}

// userRowHashes maps mdl_user ids to the md5 of their row.
func userRowHashes(t *testing.T, conn *pgx.Conn) map[int64]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT id, md5(u::text) FROM mdl_user u")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	var id int64
	var h string
	if _, err := pgx.ForEachRow(rows, []any{&id, &h}, func() error { out[id] = h; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMutate(t *testing.T) {
	ctx := context.Background()
	spec := moodlegen.Tiny()
	spec.Users = 400
	spec.Files = 100
	m := moodlegen.Mutation{Seed: 7, RowUpdatesPct: 5, NewLogRows: 50, DeletedLogRows: 20, NewFilesPct: 10, DeletedFiles: 6, ChangedConfig: 2}

	nameA, urlA, dirA, _ := environment(t, spec)
	nameB, urlB, dirB, _ := environment(t, spec)
	conn := connect(t, urlA)
	before, err := moodlegen.DatabaseDigest(ctx, urlA)
	if err != nil {
		t.Fatal(err)
	}
	usersBefore := userRowHashes(t, conn)
	logsBefore := queryInt(t, conn, "SELECT count(*) FROM mdl_logstore_standard_log")
	filesBefore := queryInt(t, conn, "SELECT count(*) FROM mdl_files WHERE filename <> '.'")
	themerev := queryInt(t, conn, "SELECT value::bigint FROM mdl_config WHERE name = 'themerev'")
	cacheBefore, err := moodlegen.TreeDigest(filepath.Join(dirA, "cache"), nil)
	if err != nil {
		t.Fatal(err)
	}

	ms, err := moodlegen.Mutate(ctx, adminURL(), nameA, dirA, spec, m)
	if err != nil {
		t.Fatalf("Mutate: %v", err)
	}

	// Users: the requested share changed, the rest is untouched.
	usersAfter := userRowHashes(t, conn)
	changed := 0
	for id, h := range usersAfter {
		if usersBefore[id] != h {
			changed++
		}
	}
	want := int(math.Round(float64(spec.Users+2) * m.RowUpdatesPct / 100))
	if changed != want || ms.UsersUpdated != int64(want) {
		t.Errorf("%d user rows changed (stats: %d), want %d", changed, ms.UsersUpdated, want)
	}
	if got := queryInt(t, conn, "SELECT count(*) FROM mdl_logstore_standard_log"); got != logsBefore+int64(m.NewLogRows-m.DeletedLogRows) {
		t.Errorf("log rows %d -> %d, want +%d -%d", logsBefore, got, m.NewLogRows, m.DeletedLogRows)
	}
	if got := queryInt(t, conn, "SELECT count(*) FROM mdl_logstore_standard_log WHERE id <= $1", int64(m.DeletedLogRows)); got != 0 {
		t.Errorf("%d of the oldest log rows survived", got)
	}
	if got := queryInt(t, conn, "SELECT count(*) FROM mdl_logstore_standard_log WHERE timecreated > $1", ms.DayStart.Unix()); got != int64(m.NewLogRows) {
		t.Errorf("%d log rows inside the day, want %d", got, m.NewLogRows)
	}
	newFiles := int(math.Round(float64(spec.Files) * m.NewFilesPct / 100))
	if ms.FilesAdded != newFiles || ms.FilesDeleted != m.DeletedFiles {
		t.Errorf("files added %d deleted %d, want %d and %d", ms.FilesAdded, ms.FilesDeleted, newFiles, m.DeletedFiles)
	}
	if got := queryInt(t, conn, "SELECT count(*) FROM mdl_files WHERE filename <> '.'"); got != filesBefore+int64(newFiles-m.DeletedFiles) {
		t.Errorf("file rows %d -> %d", filesBefore, got)
	}
	if got := queryInt(t, conn, "SELECT value::bigint FROM mdl_config WHERE name = 'themerev'"); got == themerev || ms.ConfigChanged != 2 {
		t.Errorf("themerev %d -> %d, %d config rows changed", themerev, got, ms.ConfigChanged)
	}
	// Every referenced content is still (or newly) in filedir; trashed content is in trashdir only.
	referenced := checkFiledir(t, conn, dirA)
	if ms.ContentAdded == 0 || ms.ContentTrashed == 0 {
		t.Errorf("content added %d, trashed %d: want both", ms.ContentAdded, ms.ContentTrashed)
	}
	trashed := 0
	filepath.WalkDir(filepath.Join(dirA, "trashdir"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if _, err := os.Stat(filepath.Join(dirA, "filedir", d.Name()[:2], d.Name()[2:4], d.Name())); err == nil {
				t.Errorf("%s is both in trashdir and filedir", d.Name())
			}
			if referenced[d.Name()] {
				t.Errorf("%s is in trashdir but referenced", d.Name())
			}
			trashed++
		}
		return nil
	})
	if trashed != spec.TrashFiles+ms.ContentTrashed {
		t.Errorf("trashdir holds %d files, want %d + %d", trashed, spec.TrashFiles, ms.ContentTrashed)
	}
	cacheAfter, err := moodlegen.TreeDigest(filepath.Join(dirA, "cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(moodlegen.DiffTrees(cacheBefore, cacheAfter)) < len(cacheBefore)/2 {
		t.Error("cache/ was not rewritten")
	}
	after, err := moodlegen.DatabaseDigest(ctx, urlA)
	if err != nil {
		t.Fatal(err)
	}
	diff := strings.Join(before.Diff(after), "\n")
	for _, tbl := range []string{"mdl_user", "mdl_logstore_standard_log", "mdl_files", "mdl_config", "mdl_task_scheduled"} {
		if !strings.Contains(diff, "table "+tbl+":") {
			t.Errorf("digest diff does not mention %s:\n%s", tbl, diff)
		}
	}
	if strings.Contains(diff, "mdl_course:") || strings.Contains(diff, "schema") {
		t.Errorf("digest diff mentions untouched parts:\n%s", diff)
	}

	// Same environment, same mutation: same result.
	msB, err := moodlegen.Mutate(ctx, adminURL(), nameB, dirB, spec, m)
	if err != nil {
		t.Fatal(err)
	}
	if msB != ms {
		t.Errorf("stats differ: %+v vs %+v", ms, msB)
	}
	afterB, err := moodlegen.DatabaseDigest(ctx, urlB)
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Diff(afterB); len(d) > 0 {
		t.Errorf("same mutation, different databases:\n%s", strings.Join(d, "\n"))
	}
	treeA, err := moodlegen.TreeDigest(dirA, nil)
	if err != nil {
		t.Fatal(err)
	}
	treeB, err := moodlegen.TreeDigest(dirB, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := moodlegen.DiffTrees(treeA, treeB); len(d) > 0 {
		t.Errorf("same mutation, different trees:\n%s", strings.Join(d, "\n"))
	}

	// A second day moves forward in time and still keeps files consistent.
	ms2, err := moodlegen.Mutate(ctx, adminURL(), nameA, dirA, spec, moodlegen.Mutation{Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	if !ms2.DayStart.After(ms.DayStart) || ms2.LogRowsAdded != int64(spec.LogRows/100) {
		t.Errorf("second day %+v after first %+v", ms2, ms)
	}
	checkFiledir(t, conn, dirA)
}

func TestTreeDigestExclude(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"cache/a", "temp/backup/x", "temp/keep", "filedir/f", "climaintenance.html"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "filedir/f"), 0o640)
	os.Chmod(filepath.Join(dir, "filedir"), fs.ModeSetgid|0o775)
	tests := []struct {
		name    string
		exclude []string
		want    []string
	}{
		{"nothing", nil, []string{"cache", "cache/a", "climaintenance.html", "filedir", "filedir/f", "temp", "temp/backup", "temp/backup/x", "temp/keep"}},
		{"top-level", []string{"cache", "climaintenance.html"}, []string{"filedir", "filedir/f", "temp", "temp/backup", "temp/backup/x", "temp/keep"}},
		{"nested", []string{"temp/backup/", "/cache"}, []string{"climaintenance.html", "filedir", "filedir/f", "temp", "temp/keep"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := moodlegen.TreeDigest(dir, tc.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d entries %v, want %v", len(got), got, tc.want)
			}
			for _, w := range tc.want {
				if _, ok := got[w]; !ok {
					t.Errorf("missing %s", w)
				}
			}
		})
	}
	got, _ := moodlegen.TreeDigest(dir, nil)
	if got["filedir"] != "dir 2775" || !strings.HasPrefix(got["filedir/f"], "file 0640 ") {
		t.Errorf("modes: filedir %q, filedir/f %q", got["filedir"], got["filedir/f"])
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*moodlegen.Spec)
		ok     bool
	}{
		{"tiny", func(*moodlegen.Spec) {}, true},
		{"no files, no courses", func(s *moodlegen.Spec) { s.Files, s.Courses = 0, 0 }, true},
		{"negative users", func(s *moodlegen.Spec) { s.Users = -1 }, false},
		{"text share above 1", func(s *moodlegen.Spec) { s.TextShare = 1.5 }, false},
		{"NaN duplicate share", func(s *moodlegen.Spec) { s.DuplicateShare = math.NaN() }, false},
		{"files without courses", func(s *moodlegen.Spec) { s.Courses = 0 }, false},
		{"negative junk", func(s *moodlegen.Spec) { s.Junk.Lock = -2 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := moodlegen.Tiny()
			tc.change(&s)
			if err := s.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestPresetsAndScale(t *testing.T) {
	for _, name := range []string{"tiny", "demo", "bench", "Demo"} {
		s, err := moodlegen.Preset(name)
		if err != nil || s.Validate() != nil || s.Files == 0 {
			t.Errorf("Preset(%q) = %+v, %v", name, s, err)
		}
	}
	if _, err := moodlegen.Preset("huge"); err == nil {
		t.Error("Preset(huge) succeeded")
	}
	s := moodlegen.Demo().Scaled(0.5)
	if d := moodlegen.Demo(); s.Files != d.Files/2 || s.LogRows != d.LogRows/2 || s.FileMedian != d.FileMedian {
		t.Errorf("Scaled(0.5) = %+v", s)
	}
	if s := moodlegen.Tiny().Scaled(0.0001); s.Users != 1 || s.Files != 1 {
		t.Errorf("Scaled to almost nothing keeps one of each: %+v", s)
	}
}

func TestWriteConfigPHP(t *testing.T) {
	cfg, err := moodlegen.ConfigFromURL("postgres://moodle:s3cr'et%5C@db.internal:6432/ignored?sslmode=disable", "moodle_x", "/srv/x/moodledata")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Extra = []string{"$CFG->noemailever = true;"}
	p := filepath.Join(t.TempDir(), "www", "config.php")
	if err := moodlegen.WriteConfigPHP(p, cfg); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		"<?php", "$CFG->dbtype    = 'pgsql';", "$CFG->dbhost    = 'db.internal';", "$CFG->dbname    = 'moodle_x';",
		"$CFG->dbuser    = 'moodle';", `$CFG->dbpass    = 's3cr\'et\\';`, "$CFG->prefix    = 'mdl_';",
		"'dbport' => 6432,", "$CFG->dataroot  = '/srv/x/moodledata';", "$CFG->wwwroot   = 'https://",
		"$CFG->admin     = 'admin';", "$CFG->directorypermissions = 02777;", "$CFG->noemailever = true;",
		"require_once(__DIR__ . '/lib/setup.php');",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("config.php lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "noemailever") > strings.Index(text, "require_once") {
		t.Error("extra lines come after require_once")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if err := moodlegen.WriteConfigPHP(p, moodlegen.ConfigPHP{DBName: "x"}); err == nil {
		t.Error("config.php without DataRoot accepted")
	}
}

func TestDatabaseNameGuards(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"", "postgres", "template1", strings.Repeat("x", 64)} {
		if err := moodlegen.CreateDatabase(ctx, adminURL(), name, moodlegen.Tiny()); err == nil {
			t.Errorf("CreateDatabase(%q) succeeded", name)
		}
	}
	if _, err := moodlegen.DatabaseURL("host=x dbname=y", "z"); err == nil {
		t.Error("DatabaseURL accepted a keyword/value string")
	}
	if err := moodlegen.CreateDatabase(ctx, "postgres://nobody:hunter2@127.0.0.1:1/postgres", "mgtest_unreachable", moodlegen.Tiny()); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable server: %v (must fail without printing the password)", err)
	}
}

// BenchmarkDemo measures generating the demo environment (database and
// moodledata), the cost "make demo" pays.
func BenchmarkDemo(b *testing.B) {
	ctx := context.Background()
	spec := moodlegen.Demo()
	name, _ := newDB(b)
	var bytes int64
	for i := 0; b.Loop(); i++ {
		if err := moodlegen.CreateDatabase(ctx, adminURL(), name, spec); err != nil {
			b.Fatal(err)
		}
		st, err := moodlegen.CreateMoodledata(filepath.Join(b.TempDir(), fmt.Sprint(i)), spec)
		if err != nil {
			b.Fatal(err)
		}
		bytes = st.Bytes
	}
	b.ReportMetric(float64(bytes)/(1<<20), "moodledata-MiB")
}
