package moodlegen

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Stats counts what CreateMoodledata wrote.
type Stats struct {
	Files    int64 // regular files, all folders
	Bytes    int64 // bytes of regular files, all folders
	Dirs     int64 // directories below the root
	Symlinks int64

	FiledirFiles int64 // content files in filedir/xx/yy/
	FiledirBytes int64
	TrashFiles   int64 // content files in trashdir/xx/yy/
	TrashBytes   int64
	JunkFiles    int64 // files in cache, localcache, temp, sessions and lock
	JunkBytes    int64
}

// JunkDirs returns the regenerable top-level folders the generator fills
// with junk; a backup is expected to skip them.
func JunkDirs() []string { return []string{"cache", "localcache", "temp", "sessions", "lock"} }

// CreateMoodledata writes the moodledata folder of spec into dir, which must
// be empty or absent. It is CreateMoodledataContext without cancellation.
//
// Besides filedir/ (matching the mdl_files rows [CreateDatabase] generates
// from the same spec), trashdir/ and the junk folders, the tree holds
// .htaccess, filedir/warning.txt, lang/ (packs and local customisations),
// muc/config.php, secret/key/sodium.key, models/, saml2/, repository/, an
// empty antivirus_quarantine/ and three symlinks: lang/current -> en_local,
// models/latest -> 1 and the dangling repository/archive ->
// /srv/shared/moodle-archive (symlinks must be kept, never followed).
//
// sodium.key gets mode 0600, not Moodle's 0400, so that tests running as an
// unprivileged user can still overwrite and clean up restored trees.
// Files are not fsynced: the tree is reproducible from the seed, and a crash
// leaves a partial tree that CreateMoodledata refuses to reuse.
func CreateMoodledata(dir string, spec Spec) (Stats, error) {
	return CreateMoodledataContext(context.Background(), dir, spec)
}

// CreateMoodledataContext is [CreateMoodledata] with a context that stops
// the writers.
func CreateMoodledataContext(ctx context.Context, dir string, spec Spec) (Stats, error) {
	if err := spec.Validate(); err != nil {
		return Stats{}, err
	}
	s := spec.normalized()
	if err := prepareEmptyDir(dir); err != nil {
		return Stats{}, err
	}
	w := &treeWriter{root: dir, seed: s.Seed, epoch: s.Epoch.Unix()}
	cat := buildCatalog(s)

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * runtime.GOMAXPROCS(0))
	for i := range cat.contents {
		c := cat.contents[i]
		if c.size == 0 {
			continue
		}
		g.Go(func() error {
			_, _, err := w.writeContentFile(gctx, "filedir", c.content, c.mode, c.mtime)
			return err
		})
	}
	for _, c := range trashContents(s) {
		g.Go(func() error {
			_, _, err := w.writeContentFile(gctx, "trashdir", c.content, c.mode, c.mtime)
			return err
		})
	}
	for _, f := range append(staticFiles(s), junkFiles(s, "junk", 0, s.Epoch.Unix())...) {
		g.Go(func() error { return w.writeFile(gctx, f) })
	}
	if err := g.Wait(); err != nil {
		return Stats{}, err
	}
	if err := w.finish(s); err != nil {
		return Stats{}, err
	}
	return w.stats, nil
}

// prepareEmptyDir creates dir, or accepts it when it exists and is empty.
func prepareEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create moodledata %s: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read moodledata %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("moodledata %s is not empty: remove it or choose another folder", dir)
	}
	return nil
}

// fileJob is one regular file with a fixed path.
type fileJob struct {
	rel   string // slash-separated, relative to the root
	data  []byte // literal content, or nil to generate gen
	gen   content
	mode  fs.FileMode
	mtime int64
}

// treeWriter writes files below root and counts them. Its directories get
// deterministic modes and mtimes so that equal seeds give equal trees.
type treeWriter struct {
	root  string
	seed  uint64
	epoch int64

	mu    sync.Mutex
	stats Stats
}

func (w *treeWriter) count(rel string, n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.Files++
	w.stats.Bytes += n
	top, _, _ := strings.Cut(rel, "/")
	switch {
	case top == "filedir" && isHash(path.Base(rel)):
		w.stats.FiledirFiles++
		w.stats.FiledirBytes += n
	case top == "trashdir":
		w.stats.TrashFiles++
		w.stats.TrashBytes += n
	case isJunkDir(top):
		w.stats.JunkFiles++
		w.stats.JunkBytes += n
	}
}

func isJunkDir(top string) bool {
	for _, d := range JunkDirs() {
		if top == d {
			return true
		}
	}
	return false
}

// dirMode gives each directory a stable mode: mostly 0755, with the 0775
// and 0750 that hand-managed servers accumulate; secret/ stays private.
func (w *treeWriter) dirMode(rel string) fs.FileMode {
	if rel == "secret" || strings.HasPrefix(rel, "secret/") {
		return 0o700
	}
	switch w.pathHash(rel) % 16 {
	case 0, 1:
		return 0o775
	case 2:
		return 0o750
	}
	return 0o755
}

func (w *treeWriter) pathHash(rel string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(rel))
	return mix(h.Sum64() ^ w.seed)
}

// mkdirAll creates the directories of rel that are missing.
func (w *treeWriter) mkdirAll(rel string) error {
	if rel == "." || rel == "" {
		return nil
	}
	full := filepath.Join(w.root, filepath.FromSlash(rel))
	if _, err := os.Lstat(full); err == nil {
		return nil
	}
	if err := w.mkdirAll(path.Dir(rel)); err != nil {
		return err
	}
	if err := os.Mkdir(full, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) { // created by a concurrent writer
			return nil
		}
		return fmt.Errorf("create directory %s: %w", rel, err)
	}
	if err := os.Chmod(full, w.dirMode(rel)); err != nil {
		return fmt.Errorf("chmod directory %s: %w", rel, err)
	}
	return nil
}

// writeFile writes one fixed-path file; it must not exist yet.
func (w *treeWriter) writeFile(ctx context.Context, f fileJob) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.mkdirAll(path.Dir(f.rel)); err != nil {
		return err
	}
	full := filepath.Join(w.root, filepath.FromSlash(f.rel))
	out, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", f.rel, err)
	}
	cw := &countingWriter{w: out}
	if f.data != nil {
		_, err = cw.Write(f.data)
	} else {
		err = f.gen.writeTo(cw)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.rel, err)
	}
	if err := setModeTime(full, f.mode, f.mtime); err != nil {
		return fmt.Errorf("set mode and mtime of %s: %w", f.rel, err)
	}
	w.count(f.rel, cw.n)
	return nil
}

// writeContentFile stores c under area/xx/yy/<sha1> the way Moodle does:
// write a temporary file, then rename it to its hash. It reports the hash
// and whether the file was new.
func (w *treeWriter) writeContentFile(ctx context.Context, area string, c content, mode fs.FileMode, mtime int64) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	if err := w.mkdirAll(area); err != nil {
		return "", false, err
	}
	tmpRel := fmt.Sprintf("%s/.moodlegen-%016x%016x.tmp", area, c.key.hi, c.key.lo)
	tmp := filepath.Join(w.root, filepath.FromSlash(tmpRel))
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("create %s: %w", tmpRel, err)
	}
	h := sha1.New()
	cw := &countingWriter{w: io.MultiWriter(out, h)}
	err = c.writeTo(cw)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("write %s: %w", tmpRel, err)
	}
	hash := hex.EncodeToString(h.Sum(nil))
	rel := area + "/" + contentPath(hash)
	if err := w.mkdirAll(path.Dir(rel)); err != nil {
		os.Remove(tmp)
		return "", false, err
	}
	full := filepath.Join(w.root, filepath.FromSlash(rel))
	if _, err := os.Lstat(full); err == nil { // same content already stored
		os.Remove(tmp)
		return hash, false, nil
	}
	if err := setModeTime(tmp, mode, mtime); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("set mode and mtime of %s: %w", rel, err)
	}
	if err := os.Rename(tmp, full); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("rename %s to %s: %w", tmpRel, rel, err)
	}
	w.count(rel, cw.n)
	return hash, true, nil
}

func setModeTime(full string, mode fs.FileMode, mtime int64) error {
	if err := os.Chmod(full, mode); err != nil {
		return err
	}
	t := time.Unix(mtime, 0)
	return os.Chtimes(full, t, t)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// finish adds symlinks and empty folders, then stamps every directory with
// its deterministic mtime and counts directories.
func (w *treeWriter) finish(s Spec) error {
	for _, l := range []struct{ rel, target string }{
		{"lang/current", "en_local"},
		{"models/latest", "1"},
		{"repository/archive", "/srv/shared/moodle-archive"},
	} {
		if err := w.mkdirAll(path.Dir(l.rel)); err != nil {
			return err
		}
		if err := os.Symlink(l.target, filepath.Join(w.root, filepath.FromSlash(l.rel))); err != nil {
			return fmt.Errorf("create symlink %s: %w", l.rel, err)
		}
		w.stats.Symlinks++
	}
	for _, d := range []string{"antivirus_quarantine", "filedir", "trashdir"} {
		if err := w.mkdirAll(d); err != nil {
			return err
		}
	}
	return w.stampDirs(s.Epoch.Unix())
}

// stampDirs sets every directory's mtime to a stable value before epoch
// and recounts the directories.
func (w *treeWriter) stampDirs(epoch int64) error {
	var dirs int64
	err := filepath.WalkDir(w.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || p == w.root {
			return nil
		}
		rel, err := filepath.Rel(w.root, p)
		if err != nil {
			return err
		}
		dirs++
		t := time.Unix(epoch-int64(w.pathHash(filepath.ToSlash(rel))%(30*86400)), 0)
		return os.Chtimes(p, t, t)
	})
	if err != nil {
		return fmt.Errorf("stamp directories of %s: %w", w.root, err)
	}
	w.stats.Dirs = dirs
	return nil
}

// trashContents are the files an earlier deletion left in trashdir/;
// trash is emptied daily, so they are all from the last day.
func trashContents(s Spec) []stored {
	r := key(s.Seed, "trash").rand()
	p := &uploadPlan{spec: s, domain: "trash"}
	out := make([]stored, 0, s.TrashFiles)
	for i := 0; i < s.TrashFiles; i++ {
		c := p.newContent(r, uint64(i), r.Float64() < s.TextShare, fmtTXT)
		out = append(out, stored{content: c, mode: fileMode(r), mtime: s.Epoch.Unix() - int64(r.IntN(86400))})
	}
	return out
}

// staticFiles are the small files every moodledata has.
func staticFiles(s Spec) []fileJob {
	r := key(s.Seed, "static").rand()
	epoch := s.Epoch.Unix()
	installed := epoch - 3*365*86400
	host := s.host()
	past := func() int64 { return between(r, installed, epoch-86400) }
	// Static files shrink with the upload sizes so that Tiny stays tiny.
	scale := min(max(float64(s.FileMedian)/DefaultFileMedian, 0.05), 1)
	sized := func(n int64) int64 { return max(256, int64(float64(n)*scale)) }
	text := func(f format, median int64) content {
		return content{key: key(s.Seed, "static-content", r.Uint64()), size: logNormal(r, sized(median), 0.5, 256, 1<<20), format: f}
	}
	files := []fileJob{
		{rel: ".htaccess", data: []byte("deny from all\r\nAllowOverride None\r\nNote: this file is broken intentionally, we do not want anybody to undo it in subdirectory!\r\n"), mode: 0o644, mtime: installed},
		{rel: "filedir/warning.txt", data: []byte("This directory contains the content of uploaded files and is controlled by Moodle code. Do not manually move, change or rename any of the files and subdirectories here.\n"), mode: 0o644, mtime: installed},
		{rel: "muc/config.php", data: mucConfig(host, randHex(r, 16)), mode: 0o640, mtime: past()},
		{rel: "secret/key/sodium.key", data: appendRandom(nil, r, 32), mode: 0o600, mtime: installed},
		{rel: "saml2/" + host + ".pem", data: pemBlock(r, "PRIVATE KEY", 1216), mode: 0o600, mtime: installed},
		{rel: "saml2/" + host + ".crt", data: pemBlock(r, "CERTIFICATE", 1000), mode: 0o644, mtime: installed},
		{rel: "saml2/" + randHex(r, 32) + ".idp.xml", gen: text(fmtXML, 8<<10), mode: 0o644, mtime: past()},
		{rel: "models/1/execution/trained_model.json", gen: text(fmtJSON, 24<<10), mode: 0o644, mtime: past()},
		{rel: "models/1/execution/lr_model.bin", gen: content{key: key(s.Seed, "model"), size: sized(48 << 10), format: fmtZIP}, mode: 0o644, mtime: past()},
		{rel: "repository/shared/Leitfaden Prüfungen.pdf", gen: content{key: key(s.Seed, "repo-pdf"), size: sized(180 << 10), format: fmtPDF}, mode: 0o664, mtime: past()},
		{rel: "repository/shared/readme.txt", gen: text(fmtTXT, 2<<10), mode: 0o664, mtime: past()},
		{rel: "lang/en_local/moodle.php", data: langFile(r, 12), mode: 0o644, mtime: past()},
		{rel: "lang/en_local/core_admin.php", data: langFile(r, 4), mode: 0o644, mtime: past()},
		{rel: "lang/de_local/moodle.php", data: langFile(r, 20), mode: 0o664, mtime: past()},
		{rel: "lang/de_local/mod_assign.php", data: langFile(r, 6), mode: 0o664, mtime: past()},
	}
	for _, pack := range []string{"de", "fr"} {
		for _, comp := range []string{"langconfig", "moodle", "admin", "mod_assign", "mod_forum", "mod_quiz", "auth_saml2"} {
			files = append(files, fileJob{rel: "lang/" + pack + "/" + comp + ".php", gen: text(fmtTXT, 24<<10), mode: 0o644, mtime: past()})
		}
	}
	return files
}

func mucConfig(host, id string) []byte {
	return []byte(`<?php defined('MOODLE_INTERNAL') || die();
 $configuration = array (
  'siteidentifier' => '` + id + host + `',
  'stores' => array (
    'default_application' => array ('name' => 'default_application', 'plugin' => 'file', 'configuration' => array (), 'features' => 30, 'modes' => 3, 'default' => true, 'class' => 'cachestore_file', 'lock' => 'cachelock_file_default'),
    'default_session' => array ('name' => 'default_session', 'plugin' => 'session', 'configuration' => array (), 'features' => 14, 'modes' => 2, 'default' => true, 'class' => 'cachestore_session', 'lock' => 'cachelock_file_default'),
    'default_request' => array ('name' => 'default_request', 'plugin' => 'static', 'configuration' => array (), 'features' => 31, 'modes' => 4, 'default' => true, 'class' => 'cachestore_static', 'lock' => 'cachelock_file_default'),
    'redis_prod' => array ('name' => 'redis_prod', 'plugin' => 'redis', 'configuration' => array ('server' => 'redis.internal:6379', 'prefix' => 'mdl_', 'password' => '', 'serializer' => '1', 'compressor' => '0'), 'features' => 26, 'modes' => 1, 'mappingsonly' => false, 'class' => 'cachestore_redis', 'default' => false, 'lock' => 'cachelock_file_default'),
  ),
  'modemappings' => array (
    0 => array ('mode' => 1, 'store' => 'redis_prod', 'sort' => -1),
    1 => array ('mode' => 2, 'store' => 'default_session', 'sort' => -1),
    2 => array ('mode' => 4, 'store' => 'default_request', 'sort' => -1),
  ),
  'definitions' => array (),
  'definitionmappings' => array (),
  'locks' => array ('cachelock_file_default' => array ('name' => 'cachelock_file_default', 'type' => 'cachelock_file', 'dir' => 'filelocks', 'default' => true)),
);
`)
}

func pemBlock(r *rand.Rand, kind string, n int) []byte {
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b strings.Builder
	b.WriteString("-----BEGIN " + kind + "-----\n")
	for n > 0 {
		l := min(n, 64)
		b.WriteString(randString(r, l, b64) + "\n")
		n -= l
	}
	b.WriteString("-----END " + kind + "-----\n")
	return []byte(b.String())
}

func langFile(r *rand.Rand, n int) []byte {
	b := []byte("<?php\n// Local language customisations (tool_customlang).\n\ndefined('MOODLE_INTERNAL') || die();\n\n")
	for i := 0; i < n; i++ {
		b = fmt.Appendf(b, "$string['%s%d'] = '", pick(r, words), i)
		b = appendSentence(b, r)
		b = append(b, "';\n"...)
	}
	return b
}

// junkFiles generates the regenerable folders' content. Mutate calls it
// with another domain to rewrite them.
func junkFiles(s Spec, domain string, domainID uint64, now int64) []fileJob {
	r := key(s.Seed, domain, domainID).rand()
	j := s.Junk
	median := j.MedianSize
	rev := now - int64(r.IntN(86400))
	var out []fileJob
	add := func(rel string, f format, size int64, mode fs.FileMode, mtime int64) {
		out = append(out, fileJob{rel: rel,
			gen:  content{key: key(s.Seed, domain+"-content", domainID, uint64(len(out))), size: size, format: f},
			mode: mode, mtime: mtime})
	}
	size := func() int64 { return logNormal(r, median, 1.2, 16, 512<<10) }
	recent := func() int64 { return now - int64(r.IntN(2*86400)) }
	for i := 0; i < j.Cache; i++ {
		var rel string
		f := fmtJSON
		switch r.IntN(6) {
		case 0:
			rel = fmt.Sprintf("cache/js/%d/core/amd/build/%s.min.js", rev, pick(r, words))
			f = fmtTXT
		case 1:
			rel = fmt.Sprintf("cache/theme/%d/boost/pix/%s.png", rev, randHex(r, 12))
			f = fmtPNG
		case 2:
			rel = fmt.Sprintf("cache/htmlpurifier/HTML/4.16.0,%s,1/%s.ser", randHex(r, 40), randHex(r, 40))
		default:
			def := pick(r, []string{"core_config", "core_string", "core_coursemodinfo", "core_navigation_expandcourse", "core_htmlpurifier", "mod_forum_forum_read"})
			h := randHex(r, 40)
			rel = fmt.Sprintf("cache/cachestore_file/default_application/%s/%s-cache/%s.cache", def, h[:3], h)
		}
		add(rel, f, size(), 0o644, recent())
	}
	if j.Cache > 0 {
		add("cache/core_component.php", fmtTXT, 48*median, 0o644, recent())
	}
	for i := 0; i < j.LocalCache; i++ {
		switch r.IntN(3) {
		case 0:
			add(fmt.Sprintf("localcache/theme/%d/boost/css/all_%d.css", rev, i), fmtTXT, size()*4, 0o644, recent())
		case 1:
			add(fmt.Sprintf("localcache/mustache/%d/boost/__Mustache_%s.php", rev, randHex(r, 32)), fmtTXT, size(), 0o644, recent())
		default:
			add(fmt.Sprintf("localcache/lang/%d/%s/%s.php", rev, pick(r, []string{"de", "en", "fr"}), pick(r, words)), fmtTXT, size(), 0o644, recent())
		}
	}
	for i := 0; i < j.Temp; i++ {
		switch r.IntN(3) {
		case 0:
			b := randHex(r, 32)
			add("temp/backup/"+b+"/moodle_backup.xml", fmtXML, size()*3, 0o644, recent())
			add("temp/backup/"+b+"/files/"+randHex(r, 2)+"/"+randHex(r, 40), fmtJPG, size()*8, 0o644, recent())
		case 1:
			add("temp/filestorage/"+randHex(r, 13)+".tmp", fmtPDF, size()*4, 0o600, recent())
		default:
			add(fmt.Sprintf("temp/gradeimport/cvs/%d/%d", 2+r.IntN(500), r.Int64N(1e10)), fmtCSV, size(), 0o644, recent())
		}
	}
	for i := 0; i < j.Sessions; i++ {
		add("sessions/sess_"+randString(r, 26, "abcdefghijklmnopqrstuvwxyz0123456789"), fmtJSON, logNormal(r, 3<<10, 0.6, 64, 64<<10), 0o600, recent())
	}
	for i := 0; i < j.Lock; i++ {
		out = append(out, fileJob{rel: fmt.Sprintf("lock/%s/%s", pick(r, []string{"core_cron", "core_modinfo", "cachelock_file_default"}), randHex(r, 32)), data: []byte{}, mode: 0o644, mtime: recent()})
	}
	// Random names may collide; keep the first.
	seen := make(map[string]bool, len(out))
	uniq := out[:0]
	for _, f := range out {
		if !seen[f.rel] {
			seen[f.rel] = true
			uniq = append(uniq, f)
		}
	}
	return uniq
}
