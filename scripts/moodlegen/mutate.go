package moodlegen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// Mutation describes one simulated day of use. For every amount, zero means
// the default and a negative value means none.
type Mutation struct {
	// Seed selects the day; use a new seed for each day.
	Seed uint64
	// RowUpdatesPct is the percentage of mdl_user rows updated (logins,
	// profile edits). Default 1.
	RowUpdatesPct float64
	// NewLogRows is the number of log rows appended. Default 1% of
	// Spec.LogRows (at least 1).
	NewLogRows int
	// DeletedLogRows is the number of oldest log rows deleted, as the
	// logstore cleanup task does. Default Spec.LogRows/300.
	DeletedLogRows int
	// NewFilesPct is the number of uploads, in percent of Spec.Files
	// (at least 1). Default 1.
	NewFilesPct float64
	// DeletedFiles is the number of uploaded files deleted; content no
	// longer referenced moves to trashdir/. Default a third of the uploads
	// (at least 1).
	DeletedFiles int
	// ChangedConfig is the number of mdl_config rows changed. Default 1.
	ChangedConfig int
}

// MutationStats reports what [Mutate] changed.
type MutationStats struct {
	DayStart, DayEnd time.Time // the simulated day

	UsersUpdated   int64
	LogRowsAdded   int64
	LogRowsDeleted int64
	FilesAdded     int // mdl_files rows with content (directory rows not counted)
	FilesDeleted   int
	ContentAdded   int   // new files in filedir/
	ContentBytes   int64 // their bytes
	ContentTrashed int   // filedir/ files moved to trashdir/
	ConfigChanged  int
	JunkFiles      int // junk files written after the old junk was removed
}

func (m Mutation) withDefaults(s Spec) Mutation {
	pct := func(v, def float64) float64 {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	count := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	m.RowUpdatesPct = pct(m.RowUpdatesPct, 1)
	m.NewFilesPct = pct(m.NewFilesPct, 1)
	m.NewLogRows = count(m.NewLogRows, max(1, s.LogRows/100))
	m.DeletedLogRows = count(m.DeletedLogRows, s.LogRows/300)
	m.DeletedFiles = count(m.DeletedFiles, max(1, m.newFiles(s)/3))
	m.ChangedConfig = count(m.ChangedConfig, 1)
	return m
}

func (m Mutation) newFiles(s Spec) int {
	if m.NewFilesPct <= 0 || s.Files == 0 {
		return 0
	}
	return max(1, int(math.Round(float64(s.Files)*m.NewFilesPct/100)))
}

// changingConfig lists settings that change on a normal day (caches purged,
// cron bookkeeping, an admin edit), in the order Mutate changes them.
var changingConfig = []string{"themerev", "jsrev", "scheduledtaskreset", "fileslastcleanup",
	"digestmailtimelast", "langrev", "templaterev", "allversionshash", "localcachedirpurged", "maxbytes"}

// Mutate applies one day of change to an environment generated from spec:
// it updates mdl_user rows, appends log rows and deletes the oldest ones,
// uploads files (content to filedir/ first, then the rows, as Moodle does),
// deletes files (rows first, then unreferenced content moves to trashdir/),
// changes config rows, advances the scheduled tasks' run times and rewrites
// the junk folders. The database changes commit in one transaction.
//
// The day starts at the spec's epoch or at the newest log or file time in
// the database, whichever is later, so successive mutations move forward in
// time. The result is deterministic
// for a given environment state, spec and m.
func Mutate(ctx context.Context, adminURL, dbName, moodledataDir string, spec Spec, m Mutation) (MutationStats, error) {
	if err := spec.Validate(); err != nil {
		return MutationStats{}, err
	}
	s := spec.normalized()
	m = m.withDefaults(s)
	if m.RowUpdatesPct > 100 {
		return MutationStats{}, fmt.Errorf("mutation: RowUpdatesPct is %v, must be at most 100", m.RowUpdatesPct)
	}
	if fi, err := os.Stat(filepath.Join(moodledataDir, "filedir")); err != nil || !fi.IsDir() {
		return MutationStats{}, fmt.Errorf("moodledata %s has no filedir/: generate it first", moodledataDir)
	}
	dbURL, err := DatabaseURL(adminURL, dbName)
	if err != nil {
		return MutationStats{}, err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return MutationStats{}, fmt.Errorf("connect to %s: %w", redactURL(dbURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	st, err := loadState(ctx, conn)
	if err != nil {
		return MutationStats{}, fmt.Errorf("mutate %s: %w", dbName, err)
	}
	dayStart := max(st.maxTime, s.Epoch.Unix())
	dayEnd := dayStart + 86400
	ms := MutationStats{DayStart: time.Unix(dayStart, 0).UTC(), DayEnd: time.Unix(dayEnd, 0).UTC()}
	r := key(s.Seed, "mutate", m.Seed).rand()
	w := &treeWriter{root: moodledataDir, seed: s.Seed, epoch: dayEnd}

	// Uploads: plan rows, write content, then fill in the hashes.
	newRows, err := planUploads(ctx, w, s, m, st, dayStart, dayEnd, &ms)
	if err != nil {
		return MutationStats{}, err
	}

	// Deletions are drawn among files that existed before today.
	var deleted []fileRef
	for _, i := range sample(r, len(st.files), m.DeletedFiles) {
		deleted = append(deleted, st.files[i])
	}
	slices.SortFunc(deleted, func(a, b fileRef) int { return cmp.Compare(a.id, b.id) })

	tx, err := conn.Begin(ctx)
	if err != nil {
		return MutationStats{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := updateUsers(ctx, tx, s, m, st, dayStart, dayEnd, &ms); err != nil {
		return MutationStats{}, err
	}
	if m.NewLogRows > 0 {
		gen := newLogGen(s, r, st.users, st.maxLogID+1, dayStart, dayEnd, m.NewLogRows)
		n := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if n == m.NewLogRows {
				return nil, nil
			}
			n++
			return gen.next(), nil
		})
		if ms.LogRowsAdded, err = tx.CopyFrom(ctx, pgx.Identifier{"mdl_logstore_standard_log"}, logColumns, src); err != nil {
			return MutationStats{}, fmt.Errorf("append log rows: %w", err)
		}
	}
	if m.DeletedLogRows > 0 {
		tag, err := tx.Exec(ctx, `DELETE FROM mdl_logstore_standard_log WHERE id IN
			(SELECT id FROM mdl_logstore_standard_log ORDER BY id LIMIT $1)`, m.DeletedLogRows)
		if err != nil {
			return MutationStats{}, fmt.Errorf("delete old log rows: %w", err)
		}
		ms.LogRowsDeleted = tag.RowsAffected()
	}
	if err := copyFiles(ctx, tx, newRows); err != nil {
		return MutationStats{}, err
	}
	if len(deleted) > 0 {
		ids := make([]int64, len(deleted))
		for i, d := range deleted {
			ids[i] = d.id
		}
		if _, err := tx.Exec(ctx, "DELETE FROM mdl_files WHERE id = ANY($1)", ids); err != nil {
			return MutationStats{}, fmt.Errorf("delete files: %w", err)
		}
		ms.FilesDeleted = len(deleted)
	}
	for i := 0; i < m.ChangedConfig; i++ {
		name := fmt.Sprintf("local_custom_setting_%d", i) // beyond the list: admin-made settings
		if i < len(changingConfig) {
			name = changingConfig[i]
		}
		value := strconv.FormatInt(dayStart+int64(r.IntN(86400)), 10)
		switch name {
		case "allversionshash":
			value = randHex(r, 40)
		case "maxbytes":
			value = strconv.Itoa(pick(r, []int{52428800, 104857600, 209715200, 524288000}))
		}
		_, err := tx.Exec(ctx, `INSERT INTO mdl_config (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, name, value)
		if err != nil {
			return MutationStats{}, fmt.Errorf("change config %s: %w", name, err)
		}
		ms.ConfigChanged++
	}
	if _, err := tx.Exec(ctx, `UPDATE mdl_task_scheduled
		SET lastruntime = $1::bigint - (id * 37) % 3600, nextruntime = $1::bigint - (id * 37) % 3600 + 60`, dayEnd); err != nil {
		return MutationStats{}, fmt.Errorf("advance scheduled tasks: %w", err)
	}
	if err := resetSequences(ctx, tx); err != nil {
		return MutationStats{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return MutationStats{}, fmt.Errorf("commit: %w", err)
	}

	if ms.ContentTrashed, err = trashUnreferenced(ctx, conn, w, deleted); err != nil {
		return ms, err
	}
	if ms.JunkFiles, err = rewriteJunk(ctx, w, s, m.Seed, dayEnd); err != nil {
		return ms, err
	}
	return ms, w.stampDirs(s.Epoch.Unix())
}

// fileRef is an existing mdl_files row with content.
type fileRef struct {
	id   int64
	hash string
}

// envState is what Mutate reads before changing anything.
type envState struct {
	users     []user
	files     []fileRef
	paths     map[string]bool // every pathnamehash
	maxLogID  int64
	maxFileID int64
	maxItemID int64
	maxTime   int64
}

func loadState(ctx context.Context, conn *pgx.Conn) (*envState, error) {
	st := &envState{paths: map[string]bool{}}
	err := conn.QueryRow(ctx, `SELECT
		(SELECT coalesce(max(id), 0) FROM mdl_logstore_standard_log),
		(SELECT coalesce(max(id), 0) FROM mdl_files),
		(SELECT coalesce(max(itemid), 0) FROM mdl_files WHERE itemid < 100000000),
		greatest((SELECT coalesce(max(timecreated), 0) FROM mdl_logstore_standard_log),
		         (SELECT coalesce(max(timecreated), 0) FROM mdl_files))`).
		Scan(&st.maxLogID, &st.maxFileID, &st.maxItemID, &st.maxTime)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	rows, err := conn.Query(ctx, "SELECT id, username, lastip, timecreated FROM mdl_user ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	st.users, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (user, error) {
		var u user
		err := row.Scan(&u.id, &u.username, &u.lastip, &u.timecreated)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	if len(st.users) == 0 {
		return nil, errors.New("mdl_user is empty: not a generated environment")
	}
	rows, err = conn.Query(ctx, "SELECT id, contenthash, pathnamehash, filename FROM mdl_files ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read files: %w", err)
	}
	var id int64
	var hash, ph, name string
	_, err = pgx.ForEachRow(rows, []any{&id, &hash, &ph, &name}, func() error {
		st.paths[ph] = true
		if name != "." {
			st.files = append(st.files, fileRef{id: id, hash: hash})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read files: %w", err)
	}
	return st, nil
}

// planUploads writes the day's new content into filedir/ and returns the
// mdl_files rows that reference it.
func planUploads(ctx context.Context, w *treeWriter, s Spec, m Mutation, st *envState, dayStart, dayEnd int64, ms *MutationStats) ([]fileRow, error) {
	n := m.newFiles(s)
	if n == 0 || s.Courses == 0 {
		return nil, nil
	}
	rr := key(s.Seed, "mutate-files", m.Seed).rand()
	p := &uploadPlan{spec: s, domain: "mutate-content", domainID: m.Seed, nextID: st.maxFileID + 1,
		seenPath: st.paths, seenDir: st.paths, seq: st.maxItemID}
	times := make([]int64, n)
	for i := range times {
		times[i] = between(rr, dayStart+1, dayEnd)
	}
	slices.Sort(times)
	var rows []fileRow
	var contents []stored
	for i := 0; i < n; i++ {
		c := p.newContent(rr, uint64(i), rr.Float64() < s.TextShare, fmtTXT)
		contents = append(contents, stored{content: c, mode: fileMode(rr), mtime: times[i]})
		rows = p.addUpload(rr, rows, c, i, times[i])
	}
	hashes := make([]string, n)
	added := make([]bool, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * runtime.GOMAXPROCS(0))
	for i, c := range contents {
		g.Go(func() error {
			h, isNew, err := w.writeContentFile(gctx, "filedir", c.content, c.mode, c.mtime)
			hashes[i], added[i] = h, isNew
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := range rows {
		if c := rows[i].content; c >= 0 {
			rows[i].contenthash = hashes[c]
			ms.FilesAdded++
		}
	}
	for i, a := range added {
		if a {
			ms.ContentAdded++
			ms.ContentBytes += contents[i].size
		}
	}
	return rows, nil
}

func updateUsers(ctx context.Context, tx pgx.Tx, s Spec, m Mutation, st *envState, dayStart, dayEnd int64, ms *MutationStats) error {
	k := int(math.Round(float64(len(st.users)) * m.RowUpdatesPct / 100))
	if m.RowUpdatesPct > 0 {
		k = max(k, 1)
	}
	if k == 0 {
		return nil
	}
	rr := key(s.Seed, "mutate-users", m.Seed).rand()
	idx := sample(rr, len(st.users), k)
	slices.Sort(idx)
	ids := make([]int64, 0, k)
	times := make([]int64, 0, k)
	ips := make([]string, 0, k)
	newCities := make([]string, 0, k)
	for _, i := range idx {
		u := st.users[i]
		ids = append(ids, u.id)
		times = append(times, between(rr, dayStart+1, dayEnd))
		ip := u.lastip
		if rr.IntN(4) == 0 {
			ip = ipFor(u.id + dayStart)
		}
		ips = append(ips, ip)
		city := "" // empty: keep
		if rr.IntN(10) == 0 {
			city = pick(rr, cities)
		}
		newCities = append(newCities, city)
	}
	tag, err := tx.Exec(ctx, `UPDATE mdl_user u SET
			lastlogin = u.currentlogin, currentlogin = v.t, lastaccess = v.t, timemodified = v.t,
			firstaccess = CASE WHEN u.firstaccess = 0 THEN v.t ELSE u.firstaccess END,
			lastip = v.ip, city = CASE WHEN v.city = '' THEN u.city ELSE v.city END
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS v(id, t, ip, city)
		WHERE u.id = v.id`, ids, times, ips, newCities)
	if err != nil {
		return fmt.Errorf("update users: %w", err)
	}
	ms.UsersUpdated = tag.RowsAffected()
	return nil
}

// trashUnreferenced moves the content of deleted rows that no row references
// any more from filedir/ to trashdir/, as file_system_filedir::remove_file.
func trashUnreferenced(ctx context.Context, conn *pgx.Conn, w *treeWriter, deleted []fileRef) (int, error) {
	moved := 0
	seen := map[string]bool{}
	for _, d := range deleted {
		if d.hash == emptyHash || seen[d.hash] {
			continue
		}
		seen[d.hash] = true
		var refs int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM mdl_files WHERE contenthash = $1", d.hash).Scan(&refs); err != nil {
			return moved, fmt.Errorf("count references to %s: %w", d.hash, err)
		}
		if refs > 0 {
			continue
		}
		from := path.Join("filedir", contentPath(d.hash))
		to := path.Join("trashdir", contentPath(d.hash))
		if err := w.mkdirAll(path.Dir(to)); err != nil {
			return moved, err
		}
		src := filepath.Join(w.root, filepath.FromSlash(from))
		dst := filepath.Join(w.root, filepath.FromSlash(to))
		if _, err := os.Lstat(dst); err == nil { // already in trash
			if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return moved, fmt.Errorf("remove %s: %w", from, err)
			}
			moved++
			continue
		}
		if err := os.Rename(src, dst); err != nil {
			return moved, fmt.Errorf("move %s to trash: %w", from, err)
		}
		moved++
	}
	return moved, nil
}

// rewriteJunk replaces the junk folders' content, as a day of caching,
// sessions and temp files would.
func rewriteJunk(ctx context.Context, w *treeWriter, s Spec, seed uint64, now int64) (int, error) {
	for _, d := range JunkDirs() {
		if err := os.RemoveAll(filepath.Join(w.root, d)); err != nil {
			return 0, fmt.Errorf("remove %s: %w", d, err)
		}
	}
	files := junkFiles(s, "mutate-junk", seed, now)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * runtime.GOMAXPROCS(0))
	for _, f := range files {
		g.Go(func() error { return w.writeFile(gctx, f) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return len(files), nil
}
