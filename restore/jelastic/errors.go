package jelastic

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Result codes the platform returns in the envelope's result field. The
// meanings come from the platform's dashboard string table and from public
// clients; see the project's jelastic-api reference.
const (
	CodeOK               = 0
	CodeInvalidParameter = 3    // a required parameter is missing or invalid
	CodeEntityNotFound   = 4    // "entity not found"
	CodeServiceNotFound  = 5    // no such API service
	CodeMethodNotFound   = 6    // no such method in the service
	CodeNotPermitted     = 9    // "operation not permitted"
	CodeEnvNotExist      = 11   // "application [<name>] not exist"
	CodeUnknown          = 99   // ERROR_UNKNOWN
	CodeAuthFailed       = 701  // signin refused
	CodeNotAuthenticated = 702  // missing, invalid or expired session / token
	CodeUserNotExist     = 703  // user does not exist
	CodeUserBlocked      = 704  // user blocked
	CodeWrongCredentials = 707  // wrong user name or password
	CodeInvalidPassword  = 801  // e.g. DeleteEnv confirmation password
	CodeEnvNotExists     = 901  // "Environment %(envname) does not exist."
	CodeCommandFailed    = 4109 // an ExecCmd* command exited non-zero
	CodePermissionDenied = 8202 // the token lacks the method's permission
)

// Error is an API error: the platform answered with result != 0.
type Error struct {
	Code    int    // the envelope's result
	Message string // the envelope's error text
	Method  string // e.g. "environment.control.GetEnvInfo"
	Env     string // the environment the call was about, if any
	Reason  int    // the envelope's reason, when present
	Source  string // the envelope's source, when present

	// Results holds the per-node outcomes of a failed ExecCmd* call
	// (Code == CodeCommandFailed): exit status, stdout and stderr.
	Results []CmdResult
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("jelastic ")
	b.WriteString(e.Method)
	if e.Env != "" {
		fmt.Fprintf(&b, " env %q", e.Env)
	}
	b.WriteString(": ")
	msg := e.Message
	if msg == "" {
		msg = "error"
	}
	b.WriteString(msg)
	b.WriteString(" (result ")
	b.WriteString(strconv.Itoa(e.Code))
	b.WriteString(")")
	if f, ok := e.FailedResult(); ok {
		fmt.Fprintf(&b, ": node %d exit status %d", f.NodeID, f.ExitStatus)
		if line := firstLine(f.ErrOut); line != "" {
			b.WriteString(": ")
			b.WriteString(line)
		}
	}
	return b.String()
}

// FailedResult returns the first per-node result that failed, if any.
func (e *Error) FailedResult() (CmdResult, bool) {
	for _, r := range e.Results {
		if r.Result != CodeOK || r.ExitStatus != 0 {
			return r, true
		}
	}
	return CmdResult{}, false
}

// ExitStatus is the exit status of the first failed command, or -1 when the
// error carries no per-node result.
func (e *Error) ExitStatus() int {
	if f, ok := e.FailedResult(); ok {
		return f.ExitStatus
	}
	return -1
}

// TransportError is a failure below the API: the request could not be sent,
// the connection broke, the server answered with a non-200 status or with a
// body that is not a Jelastic envelope.
type TransportError struct {
	Method     string // e.g. "environment.control.GetEnvInfo"
	URL        string // request URL without credentials, query or fragment
	StatusCode int    // HTTP status, 0 when no response was received
	Snippet    string // the start of an unexpected body, token removed
	Err        error  // the underlying cause, if any
}

func (e *TransportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "jelastic %s: POST %s", e.Method, e.URL)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Snippet != "" {
		fmt.Fprintf(&b, ": body %q", e.Snippet)
	}
	return b.String()
}

func (e *TransportError) Unwrap() error { return e.Err }

// Code returns the API result code of err, or -1 when err is not an *Error.
func Code(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

// IsNotExist reports whether err says the environment does not exist
// (result 11 or 901).
func IsNotExist(err error) bool {
	c := Code(err)
	return c == CodeEnvNotExist || c == CodeEnvNotExists
}

// IsAuth reports whether err is an authentication failure: a refused signin
// (701, 707) or a missing, wrong or expired token (702).
func IsAuth(err error) bool {
	switch Code(err) {
	case CodeAuthFailed, CodeNotAuthenticated, CodeWrongCredentials:
		return true
	}
	return false
}

// IsCommandFailed reports whether err is an ExecCmd* failure (result 4109).
// The *Error's Results keep every node's exit status, stdout and stderr.
func IsCommandFailed(err error) bool {
	return Code(err) == CodeCommandFailed
}

// IsTransport reports whether err is a transport failure rather than an API
// answer.
func IsTransport(err error) bool {
	var t *TransportError
	return errors.As(err, &t)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	const maxLen = 200
	if len(s) > maxLen {
		s = strings.ToValidUTF8(s[:maxLen], "") + "..."
	}
	return s
}
