package archiver

import (
	"fmt"
	"path"
	"strings"
)

// Matcher decides which paths are excluded. Patterns are relative to the
// folder being archived and anchored there: "cache" excludes the top-level
// cache folder only. Each path element is matched with path.Match, and
// "**" matches any number of elements, so "filedir/**/*.tmp" excludes
// temporary files at any depth below filedir.
type Matcher struct {
	patterns [][]string
}

// NewMatcher compiles patterns; an invalid pattern is an error naming it.
func NewMatcher(patterns []string) (*Matcher, error) {
	m := &Matcher{}
	for _, p := range patterns {
		p = strings.Trim(path.Clean("/"+strings.TrimSpace(p)), "/")
		if p == "" {
			continue
		}
		parts := strings.Split(p, "/")
		for _, part := range parts {
			if _, err := path.Match(part, ""); err != nil {
				return nil, fmt.Errorf("exclude pattern %q: %w", p, err)
			}
		}
		m.patterns = append(m.patterns, parts)
	}
	return m, nil
}

// Match reports whether rel (slash-separated, relative) is excluded.
func (m *Matcher) Match(rel string) bool {
	if m == nil || len(m.patterns) == 0 {
		return false
	}
	parts := strings.Split(rel, "/")
	for _, p := range m.patterns {
		if matchParts(p, parts) {
			return true
		}
	}
	return false
}

func matchParts(pat, parts []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(parts); i++ {
				if matchParts(pat[1:], parts[i:]) {
					return true
				}
			}
			return false
		}
		if len(parts) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], parts[0]); !ok {
			return false
		}
		pat, parts = pat[1:], parts[1:]
	}
	return len(parts) == 0
}
