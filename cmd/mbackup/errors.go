package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/engine"
)

// usageError is a mistake in the command line or configuration: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// errReported means the command already printed what went wrong; it only
// carries the exit code.
var errReported = errors.New("failed")

// failed is an operation that failed after reporting its own details.
type failed struct{ code int }

func (f *failed) Error() string { return errReported.Error() }
func (f *failed) Is(target error) bool {
	return target == errReported
}

func exitCode(err error) int {
	var f *failed
	if errors.As(err, &f) {
		return f.code
	}
	// cobra reports a mistyped subcommand as a plain error; it is a usage
	// error like an unknown flag.
	if strings.HasPrefix(err.Error(), "unknown command ") {
		return 2
	}
	var u *usageError
	if errors.As(err, &u) || config.IsConfigError(err) || errors.Is(err, engine.ErrWrongPassword) ||
		errors.Is(err, engine.ErrNoRepository) || errors.Is(err, engine.ErrRepositoryExists) {
		return 2
	}
	return 1
}
