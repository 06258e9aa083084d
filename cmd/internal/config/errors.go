package config

import (
	"errors"
	"strconv"
	"strings"
)

// Error is a configuration error: something in the configuration file (or a
// file it names) is wrong and the operator has to fix it. The CLI exits with
// status 2 for an *Error and with status 1 for any other error.
//
// It formats as one line: "FILE:LINE: KEY: MSG (fix: FIX)", leaving out the
// parts that are empty. No field ever holds a secret.
type Error struct {
	File string // configuration file as given to Load
	Line int    // 1-based line in File; 0 when the problem has no single line
	Key  string // dotted key path, e.g. "environments.client-x.schedule"
	Msg  string // what is wrong
	Fix  string // how to fix it; may be empty
	Err  error  // underlying cause for errors.Is/As, e.g. fs.ErrNotExist; may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString(" (fix: ")
		b.WriteString(e.Fix)
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errors is what Load returns when a file has more than one problem: every
// *Error, ordered by line, one per line of Error(). errors.As finds the
// first one, so callers test for configuration errors the same way whether
// there was one problem or several.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// IsConfigError reports whether err is (or wraps) a configuration error,
// meaning the CLI should exit with status 2.
func IsConfigError(err error) bool {
	var ce *Error
	return errors.As(err, &ce)
}
