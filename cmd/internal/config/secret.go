package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
)

const redacted = "[redacted]"

// Secret holds a password, token or key. Every way of printing or encoding
// it (fmt verbs including %+v and %#v, encoding/json, encoding.TextMarshaler,
// log/slog) yields "[redacted]"; only Value returns the secret itself.
//
// The value sits behind a pointer so that even reflection-based printing of a
// struct holding a Secret in an unexported field shows an address, not the
// value. The zero Secret is empty.
type Secret struct {
	v *string
}

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: &s} }

// Value returns the secret. Pass it straight to the consumer (a header, an
// environment variable of a child process); never format it.
func (s Secret) Value() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Value() == "" }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (s Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalText returns "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns "[redacted]" as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue makes log/slog print "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// SecretSource says where a secret comes from: a file (File set) or an
// environment variable (Env set). It never holds the secret itself; Read
// fetches it when a command needs it, so commands that don't need a secret
// don't fail for lack of it.
type SecretSource struct {
	File string // path of a file holding the secret (one trailing newline is ignored)
	Env  string // else the environment variable holding it

	cfgFile string // position of the setting, for errors
	line    int
	key     string
	lookup  func(string) (string, bool)
}

// IsSet reports whether a source is configured.
func (s SecretSource) IsSet() bool { return s.File != "" || s.Env != "" }

// Read fetches the secret. An unset source yields the zero Secret and no
// error. An unreadable or empty file, or an unset or empty variable, is an
// *Error naming the setting (never the value).
func (s SecretSource) Read() (Secret, error) {
	switch {
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			fix := "create it with the secret on one line, mode 600"
			if errors.Is(err, fs.ErrPermission) {
				fix = "run mbackup as a user that may read it"
			}
			return Secret{}, &Error{File: s.cfgFile, Line: s.line, Key: s.key,
				Msg: fmt.Sprintf("cannot read secret file %s: %s", s.File, causeText(err)), Fix: fix, Err: err}
		}
		v := strings.TrimSuffix(string(b), "\n")
		v = strings.TrimSuffix(v, "\r")
		if v == "" {
			return Secret{}, &Error{File: s.cfgFile, Line: s.line, Key: s.key,
				Msg: fmt.Sprintf("secret file %s is empty", s.File), Fix: "write the secret into it"}
		}
		return NewSecret(v), nil
	case s.Env != "":
		lookup := s.lookup
		if lookup == nil {
			lookup = os.LookupEnv
		}
		v, ok := lookup(s.Env)
		if !ok || v == "" {
			return Secret{}, &Error{File: s.cfgFile, Line: s.line, Key: s.key,
				Msg: fmt.Sprintf("environment variable %s is not set", s.Env),
				Fix: fmt.Sprintf("export %s in mbackup's environment", s.Env)}
		}
		return NewSecret(v), nil
	}
	return Secret{}, nil
}

// causeText is the message of a *fs.PathError without the repeated path.
func causeText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// modeWarning returns a warning when path is readable or writable by group
// or others, or "" when it is private or does not exist (a missing secret
// file is reported when it is read).
func modeWarning(path string) string {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("warning: %s is accessible by group or others (mode %04o; chmod 600 it)", path, fi.Mode().Perm())
}
