package postgres

import (
	"bytes"
	"errors"
	"fmt"
)

// archiveScanner follows a pg_dump custom-format archive as it streams past
// (it is the write side of an io.TeeReader) and takes from it what a
// backup records: the version of the pg_dump that wrote it and the number
// of rows of every table whose data it holds. Counting rows there rather
// than with a count(*) per table after the dump spares the database server
// a second scan of every table, which on a pay-per-use host is memory and
// CPU billed to the client.
//
// The archive is, in order: a header; the table of contents (TOC), one
// entry per object, TABLE DATA entries naming the table and the dumpId of
// its data; then one data block per entry with data: a block type byte,
// the dumpId, and length-prefixed chunks ending with an empty one. A table's
// data is COPY text: one line per row (a newline inside a value is written
// as \n), after which pg_dump writes the end-of-data line `\.` and two empty
// lines. The layout is pg_backup_archiver.c's WriteHead and WriteToc and
// pg_backup_custom.c's data blocks, archive versions 1.12 to 1.16
// (PostgreSQL 9.0 to 18).
//
// The scanner never fails the stream: on anything it does not expect (an
// unknown archive version, compressed data, a truncated archive) it stops
// and reports the cause from result, and the caller counts by querying.
type archiveScanner struct {
	err error // first surprise; scanning stopped

	// Until the TOC is read, the archive is kept in head and parsed again
	// each time it has doubled.
	head      []byte
	nextParse int
	parsed    bool

	intSize     int
	dumpVersion string         // pg_dump's PG_VERSION, from the header
	tables      map[int]string // dumpId of TABLE DATA → "schema.table"
	counts      map[string]int64

	// Data section state.
	state   scanState
	field   [16]byte // a field split across writes
	nfield  int
	inBlobs bool   // a BLOBS block: large objects, not rows
	table   string // table of the current block, "" when not counted
	rows    int64
	left    int     // bytes left in the current chunk
	tail    [8]byte // last bytes of the current block's data, after a \n standing for its start
	ntail   int     // valid bytes in tail (at most len(tail))
}

type scanState int

const (
	stateBlockType scanState = iota
	stateBlockID
	stateBlobOID
	stateChunkLen
	stateChunkData
)

// Block types of pg_backup_custom.c.
const (
	blockData  = 1
	blockBlobs = 3
)

// Archive versions this scanner knows, as pg_backup_archiver.h makes them.
const (
	archiveVersionMin = 1<<16 | 12<<8 // 1.12, PostgreSQL 9.0
	archiveVersionMax = 1<<16 | 16<<8 // 1.16, PostgreSQL 17 and 18
	archiveV1_14      = 1<<16 | 14<<8 // adds each entry's table access method
	archiveV1_15      = 1<<16 | 15<<8 // compression algorithm byte in the header
	archiveV1_16      = 1<<16 | 16<<8 // adds each entry's relkind
)

// maxArchiveHead bounds the memory held for the header and TOC: a
// database with more schema than this is counted by querying. (The bench
// database's dump has 140 TOC entries; its schema-only archive is 43 KiB:
// a few hundred bytes per table, index or sequence.)
const maxArchiveHead = 16 << 20

func newArchiveScanner() *archiveScanner {
	return &archiveScanner{nextParse: 4096, counts: map[string]int64{}}
}

// Write takes the next bytes of the archive. It always succeeds, so that
// the stream it watches is never failed by it.
func (s *archiveScanner) Write(p []byte) (int, error) {
	n := len(p)
	if s.err != nil {
		return n, nil
	}
	if !s.parsed {
		s.head = append(s.head, p...)
		if len(s.head) < s.nextParse {
			return n, nil
		}
		p = s.parseHead()
		if !s.parsed {
			return n, nil
		}
	}
	s.scan(p)
	return n, nil
}

// parseHead tries to read the header and TOC from head; once they are
// complete it returns the data that follows them.
func (s *archiveScanner) parseHead() []byte {
	r := &headReader{b: s.head}
	s.parseHeadFrom(r)
	switch {
	case errors.Is(r.err, errShort):
		if len(s.head) >= maxArchiveHead {
			s.fail(fmt.Errorf("table of contents larger than %d MiB", maxArchiveHead>>20))
		}
		s.nextParse = 2 * len(s.head)
		return nil
	case r.err != nil:
		s.fail(r.err)
		return nil
	}
	s.parsed = true
	rest := s.head[r.off:]
	s.head = nil
	return rest
}

func (s *archiveScanner) parseHeadFrom(r *headReader) {
	if magic := r.bytes(5); r.err == nil && string(magic) != "PGDMP" {
		r.fail(errors.New("not a pg_dump archive"))
	}
	vmaj, vmin, vrev := int(r.byte()), int(r.byte()), int(r.byte())
	version := vmaj<<16 | vmin<<8 | vrev
	if r.err == nil && (version < archiveVersionMin || version > archiveVersionMax|0xff) {
		r.fail(fmt.Errorf("archive version %d.%d.%d not known", vmaj, vmin, vrev))
	}
	s.intSize = int(r.byte())
	offSize := int(r.byte())
	if r.err == nil && (s.intSize < 1 || s.intSize > 8 || offSize < 1 || offSize > 8) {
		r.fail(fmt.Errorf("integer size %d, offset size %d", s.intSize, offSize))
	}
	r.intSize = s.intSize
	if format := r.byte(); r.err == nil && format != 1 {
		r.fail(fmt.Errorf("archive format %d, want custom (1)", format))
	}
	var compressed bool
	if version >= archiveV1_15 {
		compressed = r.byte() != 0
	} else {
		compressed = r.int() != 0
	}
	if r.err == nil && compressed {
		r.fail(errors.New("archive data is compressed"))
	}
	for range 7 { // creation time: sec, min, hour, mday, mon, year, isdst
		r.int()
	}
	r.str() // database name
	r.str() // server version
	dumpVersion, _ := r.str()

	n := r.int()
	tables := make(map[int]string)
	for range max(n, 0) {
		if r.err != nil {
			return
		}
		dumpID := r.int()
		r.int() // had a data dumper
		r.str() // table oid
		r.str() // oid
		tag, _ := r.str()
		desc, _ := r.str()
		r.int() // section
		r.str() // definition
		r.str() // drop statement
		r.str() // copy statement
		namespace, _ := r.str()
		r.str() // tablespace
		if version >= archiveV1_14 {
			r.str() // table access method
		}
		if version >= archiveV1_16 {
			r.int() // relkind
		}
		r.str() // owner
		r.str() // "false": tables with OIDs are gone
		for r.err == nil {
			if _, ok := r.str(); !ok {
				break // end of dependencies
			}
		}
		r.bytes(1 + offSize) // data offset: a flag and the offset
		if desc == "TABLE DATA" {
			tables[dumpID] = namespace + "." + tag
		}
	}
	if r.err == nil {
		s.dumpVersion, s.tables = dumpVersion, tables
	}
}

// scan follows the data section.
func (s *archiveScanner) scan(p []byte) {
	for len(p) > 0 && s.err == nil {
		if s.state == stateChunkData {
			n := min(s.left, len(p))
			s.data(p[:n])
			p, s.left = p[n:], s.left-n
			if s.left == 0 {
				s.state = stateChunkLen
			}
			continue
		}
		// A fixed-size field: a byte or an integer, maybe split.
		need := 1 + s.intSize
		if s.state == stateBlockType {
			need = 1
		}
		k := min(need-s.nfield, len(p))
		copy(s.field[s.nfield:], p[:k])
		s.nfield += k
		p = p[k:]
		if s.nfield < need {
			return
		}
		s.nfield = 0
		s.field1()
	}
}

// field1 acts on a complete field of the data section.
func (s *archiveScanner) field1() {
	if s.state == stateBlockType {
		switch s.field[0] {
		case blockData:
			s.inBlobs = false
		case blockBlobs:
			s.inBlobs = true
		default:
			s.fail(fmt.Errorf("unknown data block type %d", s.field[0]))
			return
		}
		s.state = stateBlockID
		return
	}
	v, err := decodeInt(s.field[:1+s.intSize])
	if err != nil {
		s.fail(err)
		return
	}
	switch s.state {
	case stateBlockID:
		// The block's start counts as a line start, as after a newline.
		s.table, s.rows, s.tail[0], s.ntail = "", 0, '\n', 1
		if !s.inBlobs {
			s.table = s.tables[v]
			s.state = stateChunkLen
		} else {
			s.state = stateBlobOID
		}
	case stateBlobOID:
		if v == 0 {
			s.state = stateBlockType
		} else {
			s.state = stateChunkLen
		}
	case stateChunkLen:
		switch {
		case v > 0:
			s.left, s.state = v, stateChunkData
		case v < 0:
			s.fail(fmt.Errorf("negative chunk length %d", v))
		case s.inBlobs:
			s.state = stateBlobOID
		default:
			s.endBlock()
			s.state = stateBlockType
		}
	}
}

// data takes bytes of the current block's data.
func (s *archiveScanner) data(p []byte) {
	if s.table == "" {
		return
	}
	s.rows += int64(bytes.Count(p, []byte{'\n'}))
	if len(p) >= len(s.tail) {
		copy(s.tail[:], p[len(p)-len(s.tail):])
		s.ntail = len(s.tail)
		return
	}
	if s.ntail+len(p) > len(s.tail) {
		drop := s.ntail + len(p) - len(s.tail)
		copy(s.tail[:], s.tail[drop:s.ntail])
		s.ntail -= drop
	}
	s.ntail += copy(s.tail[s.ntail:], p)
}

// endBlock records a table's rows, less the end-of-data line `\.` and the
// empty lines after it.
func (s *archiveScanner) endBlock() {
	if s.table == "" {
		return
	}
	t := s.tail[:s.ntail]
	trail := len(t) - len(bytes.TrimRight(t, "\n"))
	body := t[:len(t)-trail]
	// `\.` must be a line of its own (a value ending in a backslash and a
	// dot is written as `\\.`): a newline or the block's start before it.
	if trail > 0 && bytes.HasSuffix(body, []byte("\n\\.")) {
		s.rows -= int64(trail)
	}
	s.counts[s.table] += s.rows
	s.table = ""
}

func (s *archiveScanner) fail(err error) {
	if s.err == nil {
		s.err = err
		s.head = nil
	}
}

// result returns pg_dump's version and the row counts of the tables whose
// data the archive holds, once the whole archive has been written.
func (s *archiveScanner) result() (dumpVersion string, counts map[string]int64, err error) {
	if s.err == nil && !s.parsed {
		s.scan(s.parseHead()) // the archive ended: parse what there is
		if !s.parsed && s.err == nil {
			s.fail(errors.New("archive ends in its table of contents"))
		}
	}
	if s.err == nil && (s.state != stateBlockType || s.nfield != 0) {
		s.fail(errors.New("archive ends inside a data block"))
	}
	if s.err != nil {
		return "", nil, fmt.Errorf("read pg_dump archive: %w", s.err)
	}
	return s.dumpVersion, s.counts, nil
}

// decodeInt decodes pg_dump's integer: a sign byte, then the magnitude in
// little-endian order.
func decodeInt(b []byte) (int, error) {
	var v uint64
	for i := len(b) - 1; i >= 1; i-- {
		v = v<<8 | uint64(b[i])
	}
	if v > 1<<62 {
		return 0, fmt.Errorf("integer %d out of range", v)
	}
	if b[0] != 0 {
		return -int(v), nil
	}
	return int(v), nil
}

var errShort = errors.New("archive head incomplete")

// headReader reads the header and TOC fields from a buffer, remembering
// the first error (errShort when the buffer ends early).
type headReader struct {
	b       []byte
	off     int
	intSize int
	err     error
}

func (r *headReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *headReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail(errShort)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *headReader) byte() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *headReader) int() int {
	b := r.bytes(1 + r.intSize)
	if b == nil {
		return 0
	}
	v, err := decodeInt(b)
	if err != nil {
		r.fail(err)
	}
	return v
}

// str reads a string; ok is false for a NULL (a negative length).
func (r *headReader) str() (s string, ok bool) {
	n := r.int()
	if r.err != nil || n < 0 {
		return "", false
	}
	if n > maxArchiveHead {
		r.fail(fmt.Errorf("string of %d bytes in the table of contents", n))
		return "", false
	}
	return string(r.bytes(n)), r.err == nil
}
