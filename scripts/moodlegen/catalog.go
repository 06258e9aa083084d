package moodlegen

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Context ids follow one fixed layout so that files and log rows agree
// without an mdl_context table: the system context is 1, course c owns
// courseCtx(c) and its modules the next modulesPerCourse ids, and user
// contexts come after all courses.
const modulesPerCourse = 16

const (
	guestID = 1
	adminID = 2
)

func courseCtx(c int64) int64             { return 2 + c*(modulesPerCourse+1) }
func moduleCtx(c int64, m int) int64      { return courseCtx(c) + 1 + int64(m) }
func courseModuleID(c int64, m int) int64 { return c*modulesPerCourse + int64(m) }
func (s Spec) userCtx(u int64) int64      { return courseCtx(int64(s.Courses)+2) + u }

// firstCourseID is the id of the first real course (1 is the site course).
const firstCourseID = 2

func (s Spec) randomCourse(r *rand.Rand) int64 { return firstCourseID + int64(r.IntN(s.Courses)) }
func (s Spec) randomUser(r *rand.Rand) int64 {
	if s.Users == 0 {
		return adminID
	}
	return 3 + int64(r.IntN(s.Users))
}

// fileRow is one mdl_files row.
type fileRow struct {
	id                                   int64
	contenthash, pathnamehash            string
	contextid                            int64
	component, filearea                  string
	itemid                               int64
	filepath, filename                   string
	userid                               *int64
	filesize                             int64
	mimetype, source, author, license    *string
	timecreated, timemodified, sortorder int64
	content                              int // index into catalog.contents; -1 for directories and empty files
}

func (f *fileRow) values() []any {
	return []any{f.id, f.contenthash, f.pathnamehash, f.contextid, f.component, f.filearea, f.itemid,
		f.filepath, f.filename, f.userid, f.filesize, f.mimetype, int64(0), f.source, f.author, f.license,
		f.timecreated, f.timemodified, f.sortorder, nil}
}

var fileColumns = []string{"id", "contenthash", "pathnamehash", "contextid", "component", "filearea", "itemid",
	"filepath", "filename", "userid", "filesize", "mimetype", "status", "source", "author", "license",
	"timecreated", "timemodified", "sortorder", "referencefileid"}

// stored is one distinct content of the file pool, with the mode and mtime
// its filedir file gets.
type stored struct {
	content
	mode  fs.FileMode
	mtime int64
}

// catalog is the generated file pool: rows for mdl_files and the distinct
// contents behind them.
type catalog struct {
	rows     []fileRow
	contents []stored
}

// fileArea is a place where Moodle stores uploads.
type fileArea struct {
	component, filearea string
	weight              int
	text                bool   // accepts text formats (all accept media)
	level               int    // 50 course, 70 module, 30 user
	itemid              string // "zero", "seq" or "draft"
	force               format // fmtTXT: no constraint
}

var fileAreas = []fileArea{
	{"mod_resource", "content", 30, true, 70, "zero", fmtTXT},
	{"mod_folder", "content", 10, true, 70, "zero", fmtTXT},
	{"assignsubmission_file", "submission_files", 25, true, 70, "seq", fmtTXT},
	{"mod_forum", "attachment", 10, true, 70, "seq", fmtTXT},
	{"user", "private", 8, true, 30, "zero", fmtTXT},
	{"user", "draft", 5, true, 30, "draft", fmtTXT},
	{"course", "overviewfiles", 3, false, 50, "zero", fmtJPG},
	{"backup", "automated", 3, false, 50, "zero", fmtMBZ},
	{"question", "questiontext", 6, false, 50, "seq", fmtPNG},
}

var licenses = []string{"allrightsreserved", "allrightsreserved", "cc-4.0", "cc-nc-4.0", "public", "unknown"}

var (
	textStems = []string{"Skript Kapitel %d", "Notenliste_%d", "quiz-export-%d", "Lösungen Übung %d", "notes_week%d",
		"Protokoll %d", "README-%d", "glossary_%d", "Zusammenfassung Woche %d", "syllabus-%d"}
	mediaStems = []string{"Vorlesung_%02d", "IMG_%04d", "Screenshot %d", "Aufzeichnung Woche %d", "Folien Teil %d",
		"Abgabe_%d", "scan%05d", "Übungsblatt %d – Lösungen", "poster-%d", "lecture%02d"}
)

// uploadPlan says how to generate one upload, so that [Mutate] can add files
// with the same rules as the initial generation.
type uploadPlan struct {
	spec     Spec
	domain   string // stream domain of new contents
	domainID uint64
	nextID   int64
	seenPath map[string]bool
	seenDir  map[string]bool
	seq      int64
}

// newContent draws a fresh content of the text or media kind.
func (p *uploadPlan) newContent(r *rand.Rand, idx uint64, text bool, force format) content {
	f := force
	if force == fmtTXT {
		if text {
			f = textFormats[weighted(r, textFormatWeights)]
		} else {
			f = mediaFormats[weighted(r, mediaFormatWeights)]
		}
	}
	s := p.spec
	median := int64(float64(s.FileMedian) * f.info().sizeMul)
	size := logNormal(r, max(median, minContentSize), s.FileSigma, minContentSize, s.FileMax)
	return content{key: key(s.Seed, p.domain, p.domainID, idx), size: size, format: f}
}

// addUpload appends the rows for one upload: the directory rows its area
// lacks, then the file row. contentIdx is -1 for empty content.
func (p *uploadPlan) addUpload(r *rand.Rand, rows []fileRow, c content, contentIdx int, when int64) []fileRow {
	s := p.spec
	text := c.format.info().text
	var candidates []fileArea
	var weights []int
	for _, a := range fileAreas {
		if (text && !a.text) || (a.force != fmtTXT && a.force != c.format) {
			continue
		}
		candidates = append(candidates, a)
		weights = append(weights, a.weight)
	}
	if len(candidates) == 0 { // media content from a forced area reused elsewhere
		candidates, weights = fileAreas[:1], []int{1}
	}
	a := candidates[weighted(r, weights)]
	course := s.randomCourse(r)
	user := s.randomUser(r)
	var ctx int64
	switch a.level {
	case 70:
		ctx = moduleCtx(course, r.IntN(modulesPerCourse))
	case 50:
		ctx = courseCtx(course)
	default:
		ctx = s.userCtx(user)
	}
	var item int64
	switch a.itemid {
	case "seq":
		p.seq++
		item = p.seq
	case "draft":
		item = 100000000 + r.Int64N(899999999)
	}
	dir := "/"
	if a.component == "mod_folder" && r.IntN(2) == 0 {
		dir = fmt.Sprintf("/Woche %d/", 1+r.IntN(14))
	}
	stems := mediaStems
	if text {
		stems = textStems
	}
	stem := fmt.Sprintf(pick(r, stems), 1+r.IntN(200))
	name := stem + "." + c.format.info().ext
	pathHash := func(fp, fn string) string {
		h := sha1.Sum([]byte(fmt.Sprintf("/%d/%s/%s/%d%s%s", ctx, a.component, a.filearea, item, fp, fn)))
		return hex.EncodeToString(h[:])
	}
	for n := 1; p.seenPath[pathHash(dir, name)]; n++ { // Moodle's "name (n).ext" convention
		name = fmt.Sprintf("%s (%d).%s", stem, n, c.format.info().ext)
	}
	uid := user
	// Directory rows: "/." for the area and one per sub-folder, as Moodle creates them.
	dirs := []string{"/"}
	if dir != "/" {
		dirs = append(dirs, dir)
	}
	for _, d := range dirs {
		ph := pathHash(d, ".")
		if p.seenDir[ph] {
			continue
		}
		p.seenDir[ph] = true
		p.seenPath[ph] = true
		rows = append(rows, fileRow{
			id: p.nextID, contenthash: emptyHash, pathnamehash: ph, contextid: ctx,
			component: a.component, filearea: a.filearea, itemid: item, filepath: d, filename: ".",
			userid: &uid, timecreated: when, timemodified: when, content: -1,
		})
		p.nextID++
	}
	ph := pathHash(dir, name)
	p.seenPath[ph] = true
	mime := c.format.info().mime
	src := name
	author := pick(r, firstNames) + " " + pick(r, lastNames)
	lic := pick(r, licenses)
	hash := emptyHash
	if contentIdx < 0 {
		c.size = 0
	}
	var sortorder int64
	if a.component == "mod_resource" {
		sortorder = 1
	}
	rows = append(rows, fileRow{
		id: p.nextID, contenthash: hash, pathnamehash: ph, contextid: ctx,
		component: a.component, filearea: a.filearea, itemid: item, filepath: dir, filename: name,
		userid: &uid, filesize: c.size, mimetype: &mime, source: &src, author: &author, license: &lic,
		timecreated: when, timemodified: when, sortorder: sortorder, content: contentIdx,
	})
	p.nextID++
	return rows
}

// fileMode draws the mode of a filedir file: mostly Moodle's default
// 0666 &^ umask, with the variety real sites accumulate.
func fileMode(r *rand.Rand) fs.FileMode {
	return []fs.FileMode{0o644, 0o644, 0o644, 0o644, 0o644, 0o644, 0o664, 0o664, 0o640, 0o600, 0o660}[r.IntN(11)]
}

// buildCatalog generates the file pool of s without any content hash.
func buildCatalog(s Spec) *catalog {
	cat := &catalog{}
	if s.Files == 0 {
		return cat
	}
	r := key(s.Seed, "files").rand()
	// Upload times ascend with ids, as in Moodle.
	end := s.Epoch.Unix() - 3600
	start := end - 365*86400
	times := make([]int64, s.Files)
	for i := range times {
		times[i] = between(r, start, end)
	}
	slices.Sort(times)
	p := &uploadPlan{spec: s, domain: "content", nextID: 1, seenPath: map[string]bool{}, seenDir: map[string]bool{}}
	for i := 0; i < s.Files; i++ {
		var c content
		idx := -1
		switch {
		case i == 3 || r.Float64() < 0.01: // empty files exist and are virtual in Moodle
			c = content{format: fmtTXT}
		case len(cat.contents) > 0 && r.Float64() < s.DuplicateShare:
			idx = r.IntN(len(cat.contents))
			c = cat.contents[idx].content
		default:
			c = p.newContent(r, uint64(i), r.Float64() < s.TextShare, fmtTXT)
			if r.IntN(40) == 0 { // the occasional course backup or video
				c = p.newContent(r, uint64(i), false, pick(r, []format{fmtMBZ, fmtMP4}))
			}
			idx = len(cat.contents)
			cat.contents = append(cat.contents, stored{content: c, mode: fileMode(r), mtime: times[i]})
		}
		cat.rows = p.addUpload(r, cat.rows, c, idx, times[i])
	}
	return cat
}

// hashContents computes every content's SHA-1 in parallel and fills the
// rows' contenthash.
func (cat *catalog) hashContents(ctx context.Context) error {
	hashes := make([]string, len(cat.contents))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range cat.contents {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			h, err := cat.contents[i].sha1()
			if err != nil {
				return fmt.Errorf("hash content %d: %w", i, err)
			}
			hashes[i] = h
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i := range cat.rows {
		if c := cat.rows[i].content; c >= 0 {
			cat.rows[i].contenthash = hashes[c]
		}
	}
	return nil
}

// contentPath returns the filedir-relative path of a hash: xx/yy/hash.
func contentPath(hash string) string { return path.Join(hash[0:2], hash[2:4], hash) }

// isHash reports whether s looks like a content hash.
func isHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}
