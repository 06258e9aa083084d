package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mbackup/mbackup/cmd/internal/config"
)

// Kinds of events.
const (
	Failure  = config.EventFailure
	Recovery = config.EventRecovery
)

// Event is one state change of one job.
type Event struct {
	Kind string    `json:"event"`         // Failure or Recovery
	Job  string    `json:"job"`           // backup, prune, check, staging
	Env  string    `json:"env,omitempty"` // for per-environment jobs
	Time time.Time `json:"time"`
	// Error is the last attempt's error (failures only).
	Error string `json:"error,omitempty"`
	// Failures is the number of failed attempts in a row; for a recovery,
	// how many there were before it.
	Failures int `json:"consecutive_failures"`
	// LastSuccess is the previous success (zero: never); for a recovery,
	// the success that ended the failure.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Snapshot is the snapshot a recovering backup made.
	Snapshot string `json:"snapshot,omitempty"`
	Host     string `json:"host"`
}

// Subject is the one-line summary used as e-mail subject and webhook text.
func (e Event) Subject() string {
	what := e.Job
	if e.Env != "" {
		what += " of " + e.Env
	}
	switch e.Kind {
	case Recovery:
		return fmt.Sprintf("[mbackup] RECOVERED: %s on %s", what, e.Host)
	default:
		return fmt.Sprintf("[mbackup] FAILED: %s on %s", what, e.Host)
	}
}

// Body is the plain-text message.
func (e Event) Body(loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	var b strings.Builder
	what := e.Job
	if e.Env != "" {
		what += " of environment " + e.Env
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.In(loc).Format("2006-01-02 15:04:05 MST")
	}
	switch e.Kind {
	case Recovery:
		fmt.Fprintf(&b, "The %s succeeded again at %s after %d failed attempt(s).\n", what, stamp(e.Time), e.Failures)
		if e.Snapshot != "" {
			fmt.Fprintf(&b, "Snapshot: %s\n", e.Snapshot)
		}
	default:
		fmt.Fprintf(&b, "The %s failed at %s (%d failed attempt(s) in a row).\n", what, stamp(e.Time), e.Failures)
		fmt.Fprintf(&b, "Error: %s\n", e.Error)
		fmt.Fprintf(&b, "Last success: %s\n", stamp(e.LastSuccess))
		b.WriteString("You will get one more message when it recovers; `mbackup status` shows the fleet.\n")
	}
	fmt.Fprintf(&b, "Host: %s\n", e.Host)
	return b.String()
}

// Sender delivers an event one way.
type Sender interface {
	Send(ctx context.Context, e Event) error
	// Name names the channel for log lines ("webhook", "email"),
	// without secrets.
	Name() string
}

// Notifier sends events of the configured kinds through every sender.
// The zero Notifier (no senders) sends nothing.
type Notifier struct {
	Senders []Sender
	On      []string // kinds that are sent
	Loc     *time.Location
}

// New builds the notifier of cfg's notify section. It reads the SMTP
// password now, so a missing password file is reported at start-up (and
// at reload) instead of at the first failure.
func New(cfg *config.Config) (*Notifier, error) {
	n := &Notifier{On: slices.Clone(cfg.Notify.On), Loc: cfg.Location}
	if w := cfg.Notify.Webhook; w != nil {
		n.Senders = append(n.Senders, &Webhook{URL: w.URL.Value(), Headers: headerValues(w.Headers)})
	}
	if e := cfg.Notify.Email; e != nil {
		pw, err := cfg.SMTPPassword()
		if err != nil {
			return nil, err
		}
		n.Senders = append(n.Senders, &Email{
			Host: e.SMTPHost, Port: e.SMTPPort, From: e.From, To: slices.Clone(e.To),
			Username: e.Username, Password: pw.Value(), StartTLS: e.StartTLS, Loc: cfg.Location,
		})
	}
	return n, nil
}

func headerValues(h map[string]config.Secret) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v.Value()
	}
	return out
}

// Enabled reports whether events of kind are sent anywhere.
func (n *Notifier) Enabled(kind string) bool {
	return n != nil && len(n.Senders) > 0 && slices.Contains(n.On, kind)
}

// Notify sends e through every sender, each with its own deadline. It
// returns how many senders delivered it and their errors joined, each
// prefixed with the sender's name. Kinds not in On are dropped: 0, nil.
func (n *Notifier) Notify(ctx context.Context, e Event) (delivered int, err error) {
	if !n.Enabled(e.Kind) {
		return 0, nil
	}
	if e.Host == "" {
		e.Host, _ = os.Hostname()
	}
	var errs []error
	for _, s := range n.Senders {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Send(sctx, e)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("notify %s: %w", s.Name(), err))
			continue
		}
		delivered++
	}
	return delivered, errors.Join(errs...)
}
