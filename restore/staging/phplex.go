package staging

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// This is just enough of a PHP lexer to find the top-level assignments
// of a Moodle config.php without being fooled by comments
// (// $CFG->noemailever = true;), strings or here-docs.

type tokKind int

const (
	tokIdent  tokKind = iota // identifiers, keywords, $variables, numbers
	tokString                // '...', "..." and here-/now-docs
	tokPunct                 // operators and brackets
)

type token struct {
	kind       tokKind
	start, end int // byte offsets in the source
}

func (t token) text(src []byte) string { return string(src[t.start:t.end]) }

// multi-character operators the scanner must not split: "==" and "=>"
// must not look like an assignment's "=".
var operators = []string{"===", "!==", "<=>", "**=", "...", "<<=", ">>=", "??=",
	"->", "=>", "==", "!=", "<>", "<=", ">=", "&&", "||", "++", "--", "+=", "-=", "*=",
	"/=", ".=", "%=", "&=", "|=", "^=", "::", "<<", ">>", "??"}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// lexPHP returns the significant tokens of src: code between <?php and ?>,
// without whitespace and comments.
func lexPHP(src []byte) ([]token, error) {
	open := bytes.Index(src, []byte("<?php"))
	if open < 0 {
		return nil, errors.New("no <?php tag: not a PHP file")
	}
	var toks []token
	i := open + len("<?php")
	n := len(src)
	for i < n {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '#' && !(i+1 < n && src[i+1] == '['), c == '/' && i+1 < n && src[i+1] == '/':
			// A line comment ends at the newline or at ?>.
			for i < n && src[i] != '\n' && !bytes.HasPrefix(src[i:], []byte("?>")) {
				i++
			}
		case c == '/' && i+1 < n && src[i+1] == '*':
			end := bytes.Index(src[i+2:], []byte("*/"))
			if end < 0 {
				return nil, fmt.Errorf("unterminated /* comment at byte %d", i)
			}
			i += 2 + end + 2
		case c == '\'' || c == '"':
			end, err := skipQuoted(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokString, i, end})
			i = end
		case c == '<' && bytes.HasPrefix(src[i:], []byte("<<<")):
			end, err := skipHeredoc(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokString, i, end})
			i = end
		case c == '?' && i+1 < n && src[i+1] == '>':
			// Inline text up to the next <?php is not code.
			next := bytes.Index(src[i:], []byte("<?php"))
			if next < 0 {
				return toks, nil
			}
			i += next + len("<?php")
		case c == '$' || isIdentByte(c):
			j := i + 1
			for j < n && isIdentByte(src[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, i, j})
			i = j
		default:
			l := 1
			for _, op := range operators {
				if bytes.HasPrefix(src[i:], []byte(op)) {
					l = len(op)
					break
				}
			}
			toks = append(toks, token{tokPunct, i, i + l})
			i += l
		}
	}
	return toks, nil
}

func skipQuoted(src []byte, i int) (int, error) {
	q := src[i]
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at byte %d", i)
}

// skipHeredoc skips <<<ID ... ID, <<<'ID' and <<<"ID" (PHP 7.3 rules: the
// closing identifier may be indented and followed by other code).
func skipHeredoc(src []byte, i int) (int, error) {
	j := i + 3
	for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
		j++
	}
	quoted := j < len(src) && (src[j] == '\'' || src[j] == '"')
	if quoted {
		j++
	}
	k := j
	for k < len(src) && isIdentByte(src[k]) {
		k++
	}
	id := src[j:k]
	if len(id) == 0 {
		return 0, fmt.Errorf("bad here-doc at byte %d", i)
	}
	if quoted {
		k++
	}
	for line := bytes.IndexByte(src[k:], '\n'); line >= 0; {
		p := k + line + 1
		q := p
		for q < len(src) && (src[q] == ' ' || src[q] == '\t') {
			q++
		}
		if bytes.HasPrefix(src[q:], id) && (q+len(id) == len(src) || !isIdentByte(src[q+len(id)])) {
			return q + len(id), nil
		}
		k = p
		line = bytes.IndexByte(src[k:], '\n')
	}
	return 0, fmt.Errorf("unterminated here-doc at byte %d", i)
}

// phpAssign is one "$CFG->name = value;" or "$CFG->name['key'] = value;".
type phpAssign struct {
	name             string // "wwwroot", or "dboptions[dbport]"
	start            int    // offset of $CFG
	valStart, valEnd int    // the value expression
	end              int    // just after the ;
}

// phpFile is a lexed config.php.
type phpFile struct {
	src     []byte
	toks    []token
	assigns []phpAssign
	setup   int // offset of the require of lib/setup.php, -1 when absent
	close   int // offset of the last ?> when the file ends in PHP code, -1 otherwise
}

func parseConfigPHP(src []byte) (*phpFile, error) {
	toks, err := lexPHP(src)
	if err != nil {
		return nil, err
	}
	f := &phpFile{src: src, toks: toks, setup: -1, close: -1}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.kind != tokIdent {
			continue
		}
		switch word := t.text(src); {
		case word == "$CFG":
			a, next, ok, err := f.assignment(i)
			if err != nil {
				return nil, err
			}
			if ok {
				f.assigns = append(f.assigns, a)
				i = next
			}
		case strings.EqualFold(word, "require_once") || strings.EqualFold(word, "require") ||
			strings.EqualFold(word, "include_once") || strings.EqualFold(word, "include"):
			end := f.statementEnd(i + 1)
			if end < 0 {
				return nil, fmt.Errorf("statement at byte %d has no ;", t.start)
			}
			if f.setup < 0 && strings.Contains(string(src[t.start:toks[end].end]), "lib/setup.php") {
				f.setup = t.start
			}
			i = end
		}
	}
	if k := bytes.LastIndex(src, []byte("?>")); k >= 0 && len(bytes.TrimSpace(src[k+2:])) == 0 &&
		len(toks) > 0 && toks[len(toks)-1].end <= k {
		f.close = k
	}
	return f, nil
}

// assignment parses the assignment starting at token i ($CFG), if it is
// one: it returns the assignment and the index of its ; token.
func (f *phpFile) assignment(i int) (phpAssign, int, bool, error) {
	toks, src := f.toks, f.src
	at := func(k int) string {
		if k < len(toks) {
			return toks[k].text(src)
		}
		return ""
	}
	if at(i+1) != "->" || i+2 >= len(toks) || toks[i+2].kind != tokIdent {
		return phpAssign{}, 0, false, nil
	}
	name := at(i + 2)
	j := i + 3
	if at(j) == "[" && j+2 < len(toks) && toks[j+1].kind == tokString && at(j+2) == "]" {
		key, ok := phpUnquote(at(j + 1))
		if !ok {
			return phpAssign{}, 0, false, nil
		}
		name += "[" + key + "]"
		j += 3
	}
	if at(j) != "=" || j+1 >= len(toks) {
		return phpAssign{}, 0, false, nil
	}
	end := f.statementEnd(j + 1)
	if end < 0 || end == j+1 {
		return phpAssign{}, 0, false, fmt.Errorf("assignment to $CFG->%s at byte %d has no value or no ;", name, toks[i].start)
	}
	return phpAssign{name: name, start: toks[i].start, valStart: toks[j+1].start, valEnd: toks[end-1].end, end: toks[end].end}, end, true, nil
}

// statementEnd returns the index of the ; ending the statement whose
// tokens start at i, or -1.
func (f *phpFile) statementEnd(i int) int {
	depth := 0
	for k := i; k < len(f.toks); k++ {
		if f.toks[k].kind != tokPunct {
			continue
		}
		switch f.toks[k].text(f.src) {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
			if depth < 0 {
				return -1
			}
		case ";":
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}

// arrayItem finds key => value at the top level of the array literal in
// src[start:end] and returns the value's span.
func (f *phpFile) arrayItem(start, end int, key string) (int, int, bool) {
	var toks []token
	for _, t := range f.toks {
		if t.start >= start && t.end <= end {
			toks = append(toks, t)
		}
	}
	depth := 0
	for k := 0; k < len(toks); k++ {
		t := toks[k]
		s := t.text(f.src)
		if t.kind == tokPunct {
			switch s {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
			continue
		}
		if depth != 1 || t.kind != tokString || k+2 >= len(toks) || toks[k+1].text(f.src) != "=>" {
			continue
		}
		if v, ok := phpUnquote(s); !ok || v != key {
			continue
		}
		d := 0
		for m := k + 2; m < len(toks); m++ {
			switch toks[m].text(f.src) {
			case "(", "[", "{":
				d++
				continue
			case ")", "]", "}":
				if d > 0 {
					d--
					continue
				}
			case ",":
				if d > 0 {
					continue
				}
			default:
				continue
			}
			if m == k+2 {
				return 0, 0, false
			}
			return toks[k+2].start, toks[m-1].end, true
		}
	}
	return 0, 0, false
}

// stringValue returns the value of the last assignment to name when it
// is a single string literal.
func (f *phpFile) stringValue(name string) (string, bool) {
	for i := len(f.assigns) - 1; i >= 0; i-- {
		a := f.assigns[i]
		if a.name == name {
			return phpUnquote(string(f.src[a.valStart:a.valEnd]))
		}
	}
	return "", false
}

// phpUnquote decodes a single string literal ('...' or "..." without
// interpolation).
func phpUnquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != s[len(s)-1] || (s[0] != '\'' && s[0] != '"') {
		return "", false
	}
	q, body := s[0], s[1:len(s)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if q == '"' && c == '$' {
			return "", false // interpolated: not a literal
		}
		if c != '\\' || i+1 == len(body) {
			b.WriteByte(c)
			continue
		}
		n := body[i+1]
		switch {
		case n == '\\' || n == q:
			b.WriteByte(n)
			i++
		case q == '"' && n == 'n':
			b.WriteByte('\n')
			i++
		case q == '"' && n == 't':
			b.WriteByte('\t')
			i++
		case q == '"' && n == '$':
			b.WriteByte('$')
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// phpString quotes s as a single-quoted PHP string literal.
func phpString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
