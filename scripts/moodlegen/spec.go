package moodlegen

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Defaults used when the corresponding [Spec] field is zero.
const (
	DefaultFileMedian = 40 << 10 // bytes
	DefaultFileSigma  = 1.3      // log-normal shape: p99 ≈ 20 × median
	DefaultFileMax    = 6 << 20  // bytes
	DefaultWWWRoot    = "https://moodle.example.ch"
)

// DefaultEpochUnix is the generated site's "now" (2025-03-03T06:00:00Z, Unix
// seconds) when Spec.Epoch is zero: every timestamp and mtime lies before it.
// A fixed instant keeps output reproducible.
const DefaultEpochUnix = 1740981600

// Spec describes one generated environment. The zero values of FileMedian,
// FileSigma, FileMax, Epoch and WWWRoot mean "use the default"; every other
// field is taken literally. Start from a preset ([Tiny], [Demo], [Bench]) and
// adjust.
type Spec struct {
	// Seed selects the environment. Equal Specs generate identical output.
	Seed uint64
	// Epoch is the site's "now"; generated times lie in the year before it.
	Epoch time.Time
	// WWWRoot is the site URL used in settings (noreplyaddress,
	// siteidentifier, muc and saml2 files).
	WWWRoot string

	Users   int // mdl_user rows besides guest (id 1) and admin (id 2)
	Courses int // mdl_course rows besides the site course (id 1)
	LogRows int // mdl_logstore_standard_log rows

	// Files is the number of uploaded files (mdl_files rows with content; the
	// directory rows Moodle adds per file area come on top).
	Files int
	// FileMedian and FileSigma give the log-normal size law of file content
	// (median in bytes, σ of the underlying normal); FileMax caps the tail.
	FileMedian int64
	FileSigma  float64
	FileMax    int64
	// TextShare is the fraction of files holding compressible text (HTML,
	// CSV, XML, plain text); the rest is incompressible random bytes standing
	// for images, video, PDFs and course backups.
	TextShare float64
	// DuplicateShare is the fraction of uploads whose content equals an
	// earlier upload (the same PDF in two courses): one filedir file, two rows.
	DuplicateShare float64

	// TrashFiles is the number of content files already in trashdir/.
	TrashFiles int
	// Junk sizes the regenerable folders a backup should skip.
	Junk Junk
}

// Junk gives the number of files in each regenerable moodledata folder.
type Junk struct {
	Cache      int // cache/: MUC file stores, theme and JS caches
	LocalCache int // localcache/
	Temp       int // temp/, incl. temp/backup/ work folders
	Sessions   int // sessions/sess_*
	Lock       int // lock/
	// MedianSize is the median junk file size in bytes (zero: 2 KiB).
	MedianSize int64
}

// Total returns the number of junk files.
func (j Junk) Total() int { return j.Cache + j.LocalCache + j.Temp + j.Sessions + j.Lock }

// Tiny is a preset for fast unit tests: a few hundred KB in all.
func Tiny() Spec {
	return Spec{
		Seed:           1,
		Users:          40,
		Courses:        4,
		LogRows:        600,
		Files:          30,
		FileMedian:     3 << 10,
		FileSigma:      1.0,
		FileMax:        64 << 10,
		TextShare:      0.35,
		DuplicateShare: 0.05,
		TrashFiles:     3,
		Junk:           Junk{Cache: 12, LocalCache: 6, Temp: 5, Sessions: 6, Lock: 3, MedianSize: 1 << 10},
	}
}

// Demo is the preset behind "make demo": roughly 30–60 MB of moodledata and
// database together, generated in seconds.
func Demo() Spec {
	return Spec{
		Seed:           1,
		Users:          400,
		Courses:        30,
		LogRows:        60_000,
		Files:          320,
		TextShare:      0.35,
		DuplicateShare: 0.05,
		TrashFiles:     12,
		Junk:           Junk{Cache: 300, LocalCache: 120, Temp: 60, Sessions: 80, Lock: 20},
	}
}

// Bench is the preset for performance work: a few thousand files (about half
// a gigabyte of moodledata) and a database of a few hundred MB, dominated by
// the log table.
func Bench() Spec {
	return Spec{
		Seed:           1,
		Users:          8_000,
		Courses:        400,
		LogRows:        1_500_000,
		Files:          4_000,
		TextShare:      0.35,
		DuplicateShare: 0.05,
		TrashFiles:     60,
		Junk:           Junk{Cache: 2_000, LocalCache: 600, Temp: 300, Sessions: 800, Lock: 100},
	}
}

// Preset returns the named preset: "tiny", "demo" or "bench".
func Preset(name string) (Spec, error) {
	switch strings.ToLower(name) {
	case "tiny":
		return Tiny(), nil
	case "demo":
		return Demo(), nil
	case "bench":
		return Bench(), nil
	}
	return Spec{}, fmt.Errorf("unknown preset %q (want tiny, demo or bench)", name)
}

// Scaled returns a copy of s with every count multiplied by x (rounded, at
// least 1 where s had at least 1). Sizes and shares are unchanged.
func (s Spec) Scaled(x float64) Spec {
	scale := func(n int) int {
		if n <= 0 {
			return n
		}
		return max(1, int(math.Round(float64(n)*x)))
	}
	s.Users = scale(s.Users)
	s.Courses = scale(s.Courses)
	s.LogRows = scale(s.LogRows)
	s.Files = scale(s.Files)
	s.TrashFiles = scale(s.TrashFiles)
	s.Junk.Cache = scale(s.Junk.Cache)
	s.Junk.LocalCache = scale(s.Junk.LocalCache)
	s.Junk.Temp = scale(s.Junk.Temp)
	s.Junk.Sessions = scale(s.Junk.Sessions)
	s.Junk.Lock = scale(s.Junk.Lock)
	return s
}

// Validate reports the first field that cannot be generated.
func (s Spec) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		n    int
	}{
		{"Users", s.Users}, {"Courses", s.Courses}, {"LogRows", s.LogRows}, {"Files", s.Files},
		{"TrashFiles", s.TrashFiles}, {"Junk.Cache", s.Junk.Cache}, {"Junk.LocalCache", s.Junk.LocalCache},
		{"Junk.Temp", s.Junk.Temp}, {"Junk.Sessions", s.Junk.Sessions}, {"Junk.Lock", s.Junk.Lock},
	} {
		if f.n < 0 {
			errs = append(errs, fmt.Errorf("spec: %s is %d, must be >= 0", f.name, f.n))
		}
	}
	if s.FileMedian < 0 || s.FileMax < 0 || s.Junk.MedianSize < 0 {
		errs = append(errs, errors.New("spec: FileMedian, FileMax and Junk.MedianSize must be >= 0"))
	}
	if s.FileSigma < 0 || math.IsNaN(s.FileSigma) || math.IsInf(s.FileSigma, 0) {
		errs = append(errs, fmt.Errorf("spec: FileSigma is %v, must be a finite number >= 0", s.FileSigma))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"TextShare", s.TextShare}, {"DuplicateShare", s.DuplicateShare}} {
		if !(f.v >= 0 && f.v <= 1) {
			errs = append(errs, fmt.Errorf("spec: %s is %v, must be within [0, 1]", f.name, f.v))
		}
	}
	if s.Courses == 0 && s.Files > 0 {
		errs = append(errs, errors.New("spec: Files > 0 needs Courses > 0 (files live in courses)"))
	}
	return errors.Join(errs...)
}

// normalized fills the zero-means-default fields.
func (s Spec) normalized() Spec {
	if s.FileMedian == 0 {
		s.FileMedian = DefaultFileMedian
	}
	if s.FileSigma == 0 {
		s.FileSigma = DefaultFileSigma
	}
	if s.FileMax == 0 {
		s.FileMax = DefaultFileMax
	}
	if s.FileMax < s.FileMedian {
		s.FileMax = s.FileMedian
	}
	if s.Junk.MedianSize == 0 {
		s.Junk.MedianSize = 2 << 10
	}
	if s.Epoch.IsZero() {
		s.Epoch = time.Unix(DefaultEpochUnix, 0)
	}
	s.Epoch = s.Epoch.Truncate(time.Second).UTC()
	if s.WWWRoot == "" {
		s.WWWRoot = DefaultWWWRoot
	}
	return s
}

// host returns the host part of the site URL.
func (s Spec) host() string {
	h := strings.TrimPrefix(strings.TrimPrefix(s.WWWRoot, "https://"), "http://")
	if i := strings.IndexAny(h, "/:"); i >= 0 {
		h = h[:i]
	}
	if h == "" {
		return "moodle.example.ch"
	}
	return h
}
