package moodlegen

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
)

// emptyHash is the SHA-1 of empty content. Moodle treats it as virtual: rows
// with it (directories, empty files) have no file in filedir.
const emptyHash = "da39a3ee5e6b4b0d3255bfef95601890afd80709"

// format is the kind of a generated file's content.
type format uint8

const (
	fmtTXT format = iota
	fmtHTML
	fmtCSV
	fmtXML
	fmtJSON
	fmtSVG
	fmtMD
	fmtPDF
	fmtJPG
	fmtPNG
	fmtMP4
	fmtMP3
	fmtDOCX
	fmtPPTX
	fmtZIP
	fmtMBZ
)

type formatInfo struct {
	ext, mime string
	text      bool
	magic     string  // leading bytes of media formats
	sizeMul   float64 // relative size: videos and backups are larger
}

var formats = [...]formatInfo{
	fmtTXT:  {ext: "txt", mime: "text/plain", text: true, sizeMul: 0.5},
	fmtHTML: {ext: "html", mime: "text/html", text: true, sizeMul: 1},
	fmtCSV:  {ext: "csv", mime: "text/csv", text: true, sizeMul: 0.7},
	fmtXML:  {ext: "xml", mime: "application/xml", text: true, sizeMul: 1.2},
	fmtJSON: {ext: "json", mime: "application/json", text: true, sizeMul: 0.6},
	fmtSVG:  {ext: "svg", mime: "image/svg+xml", text: true, sizeMul: 0.4},
	fmtMD:   {ext: "md", mime: "text/markdown", text: true, sizeMul: 0.4},
	fmtPDF:  {ext: "pdf", mime: "application/pdf", magic: "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", sizeMul: 1.5},
	fmtJPG:  {ext: "jpg", mime: "image/jpeg", magic: "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01", sizeMul: 1.2},
	fmtPNG:  {ext: "png", mime: "image/png", magic: "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", sizeMul: 0.6},
	fmtMP4:  {ext: "mp4", mime: "video/mp4", magic: "\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", sizeMul: 5},
	fmtMP3:  {ext: "mp3", mime: "audio/mp3", magic: "ID3\x04\x00\x00\x00\x00\x00\x00", sizeMul: 3},
	fmtDOCX: {ext: "docx", mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", magic: "PK\x03\x04\x14\x00\x06\x00", sizeMul: 0.8},
	fmtPPTX: {ext: "pptx", mime: "application/vnd.openxmlformats-officedocument.presentationml.presentation", magic: "PK\x03\x04\x14\x00\x06\x00", sizeMul: 2},
	fmtZIP:  {ext: "zip", mime: "application/zip", magic: "PK\x03\x04\x14\x00\x00\x00", sizeMul: 2},
	fmtMBZ:  {ext: "mbz", mime: "application/vnd.moodle.backup", magic: "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", sizeMul: 6},
}

func (f format) info() formatInfo { return formats[f] }

var (
	textFormats        = []format{fmtTXT, fmtHTML, fmtCSV, fmtXML, fmtJSON, fmtSVG, fmtMD}
	textFormatWeights  = []int{3, 6, 3, 2, 2, 1, 1}
	mediaFormats       = []format{fmtPDF, fmtJPG, fmtPNG, fmtMP4, fmtMP3, fmtDOCX, fmtPPTX, fmtZIP}
	mediaFormatWeights = []int{10, 7, 5, 2, 1, 5, 3, 1}
)

// content is one deterministic file body: generating it twice yields the same
// bytes, so it never has to be held in memory.
type content struct {
	key    streamKey
	size   int64
	format format
}

// minContentSize keeps small text files long enough that two seeds never
// produce the same bytes.
const minContentSize = 128

// chunkSize bounds the memory one generator uses.
const chunkSize = 64 << 10

// writeTo streams the content to w.
func (c content) writeTo(w io.Writer) error {
	if c.size <= 0 {
		return nil
	}
	r := c.key.rand()
	buf := make([]byte, 0, chunkSize+4<<10)
	left := c.size
	info := c.format.info()
	first := true
	for left > 0 {
		buf = buf[:0]
		if info.text {
			if first {
				buf = appendTextHeader(buf, r, c.format)
			}
			for len(buf) < chunkSize {
				buf = appendTextUnit(buf, r, c.format)
			}
		} else {
			if first {
				buf = append(buf, info.magic...)
			}
			buf = appendRandom(buf, r, chunkSize-len(buf))
		}
		first = false
		n := min(int64(len(buf)), left)
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// sha1 returns the hex SHA-1 of the content, the name Moodle gives its file.
func (c content) sha1() (string, error) {
	if c.size <= 0 {
		return emptyHash, nil
	}
	h := sha1.New()
	if err := c.writeTo(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// appendRandom appends n incompressible bytes.
func appendRandom(b []byte, r *rand.Rand, n int) []byte {
	start := len(b)
	b = append(b, make([]byte, n)...)
	p := b[start:]
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, r.Uint64())
		p = p[8:]
	}
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return b
}

func appendTextHeader(b []byte, r *rand.Rand, f format) []byte {
	switch f {
	case fmtHTML:
		b = append(b, "<!DOCTYPE html>\n<html lang=\"de\">\n<head><meta charset=\"utf-8\"><title>"...)
		b = appendWords(b, r, 3+r.IntN(4))
		b = append(b, "</title></head>\n<body>\n"...)
	case fmtCSV:
		b = append(b, "id;username;lastname;firstname;email;grade;submitted;feedback\n"...)
	case fmtXML:
		b = append(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<quiz>\n"...)
	case fmtJSON:
		b = append(b, "{\"version\":\"2024100700\",\"items\":[\n"...)
	case fmtSVG:
		b = append(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"600\">\n"...)
	case fmtMD:
		b = append(b, "# "...)
		b = appendWords(b, r, 3+r.IntN(4))
		b = append(b, "\n\n"...)
	}
	return b
}

// appendTextUnit appends one paragraph, row or element of the format.
func appendTextUnit(b []byte, r *rand.Rand, f format) []byte {
	switch f {
	case fmtHTML:
		switch r.IntN(8) {
		case 0:
			b = append(b, "<h2>"...)
			b = appendWords(b, r, 2+r.IntN(5))
			b = append(b, "</h2>\n"...)
		case 1:
			b = append(b, "<ul>\n"...)
			for i := 0; i < 2+r.IntN(4); i++ {
				b = append(b, "  <li>"...)
				b = appendSentence(b, r)
				b = append(b, "</li>\n"...)
			}
			b = append(b, "</ul>\n"...)
		case 2:
			b = fmt.Appendf(b, "<p><a href=\"/mod/page/view.php?id=%d\">", 100+r.IntN(90000))
			b = appendWords(b, r, 2+r.IntN(4))
			b = append(b, "</a></p>\n"...)
		default:
			b = append(b, "<p>"...)
			b = appendParagraph(b, r)
			b = append(b, "</p>\n"...)
		}
	case fmtCSV:
		first, last := pick(r, firstNames), pick(r, lastNames)
		b = fmt.Appendf(b, "%d;%s;%s;%s;%s@students.example.ch;%d.%d;2024-%02d-%02d %02d:%02d;",
			r.IntN(99999), usernameFor(first, last, r.IntN(100)), last, first, usernameFor(first, last, 0),
			r.IntN(7), r.IntN(10), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60))
		b = appendWords(b, r, r.IntN(8))
		b = append(b, '\n')
	case fmtXML:
		b = fmt.Appendf(b, "  <question type=\"%s\">\n    <name><text>", pick(r, []string{"multichoice", "truefalse", "shortanswer", "essay", "numerical"}))
		b = appendWords(b, r, 2+r.IntN(5))
		b = append(b, "</text></name>\n    <questiontext format=\"html\"><text><![CDATA[<p>"...)
		b = appendSentence(b, r)
		b = append(b, "</p>]]></text></questiontext>\n"...)
		for i := 0; i < 2+r.IntN(3); i++ {
			b = fmt.Appendf(b, "    <answer fraction=\"%d\"><text>", pick(r, []int{0, 0, 0, 50, 100}))
			b = appendWords(b, r, 1+r.IntN(6))
			b = append(b, "</text></answer>\n"...)
		}
		b = append(b, "  </question>\n"...)
	case fmtJSON:
		b = fmt.Appendf(b, "{\"id\":%d,\"courseid\":%d,\"name\":\"", r.IntN(1000000), r.IntN(5000))
		b = appendWords(b, r, 2+r.IntN(5))
		b = fmt.Appendf(b, "\",\"grade\":%d.%02d,\"timemodified\":%d,\"tags\":[\"%s\",\"%s\"]},\n",
			r.IntN(100), r.IntN(100), 1700000000+r.IntN(40000000), pick(r, words), pick(r, words))
	case fmtSVG:
		if r.IntN(2) == 0 {
			b = fmt.Appendf(b, "  <rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%06x\"/>\n",
				r.IntN(800), r.IntN(600), 1+r.IntN(200), 1+r.IntN(200), r.IntN(1<<24))
		} else {
			b = fmt.Appendf(b, "  <text x=\"%d\" y=\"%d\" font-size=\"%d\">", r.IntN(800), r.IntN(600), 8+r.IntN(24))
			b = appendWords(b, r, 1+r.IntN(4))
			b = append(b, "</text>\n"...)
		}
	case fmtMD:
		if r.IntN(6) == 0 {
			b = append(b, "## "...)
			b = appendWords(b, r, 2+r.IntN(4))
			b = append(b, "\n\n"...)
		} else if r.IntN(4) == 0 {
			for i := 0; i < 2+r.IntN(4); i++ {
				b = append(b, "- "...)
				b = appendSentence(b, r)
				b = append(b, '\n')
			}
			b = append(b, '\n')
		} else {
			b = appendParagraph(b, r)
			b = append(b, "\n\n"...)
		}
	default:
		b = appendParagraph(b, r)
		b = append(b, "\n\n"...)
	}
	return b
}

func appendParagraph(b []byte, r *rand.Rand) []byte {
	for i, n := 0, 2+r.IntN(6); i < n; i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendSentence(b, r)
	}
	return b
}

func appendSentence(b []byte, r *rand.Rand) []byte {
	n := 5 + r.IntN(12)
	start := len(b)
	b = appendWords(b, r, n)
	if len(b) > start && b[start] >= 'a' && b[start] <= 'z' {
		b[start] -= 'a' - 'A'
	}
	return append(b, pick(r, []string{".", ".", ".", "?", "!", ":"})...)
}

func appendWords(b []byte, r *rand.Rand, n int) []byte {
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		switch r.IntN(14) {
		case 0:
			b = strconv.AppendInt(b, int64(r.IntN(2000)), 10)
		case 1:
			b = append(b, pick(r, lastNames)...)
		default:
			b = append(b, pick(r, words)...)
		}
	}
	return b
}
