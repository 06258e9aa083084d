// Package fault wraps a backend and injects failures: errors, delays and
// torn writes, on chosen operations and file types. Tests use it to prove
// that a failed or interrupted operation never damages a repository.
package fault

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mbackup/mbackup/engine/backend"
)

// Op names a backend operation.
type Op string

// The operations a rule can match.
const (
	Save   Op = "save"
	Load   Op = "load"
	Stat   Op = "stat"
	List   Op = "list"
	Remove Op = "remove"
)

// ErrInjected is the default injected error.
var ErrInjected = errors.New("injected fault")

// Rule describes a fault. Zero fields match everything.
type Rule struct {
	Op   Op               // operation to match; "" matches all
	Type backend.FileType // file type to match; 0 matches all
	// Skip lets this many matching calls through before the rule fires.
	Skip int
	// Times is how often the rule fires; 0 means forever.
	Times int
	// Probability in (0,1] fires the rule at random; 0 means always.
	Probability float64
	// Err is returned when the rule fires (ErrInjected if nil).
	Err error
	// Delay is slept before the call (or before failing).
	Delay time.Duration
	// Torn makes a failing Save store a truncated copy first, as a
	// non-atomic store would; readers must detect it.
	Torn bool
	// Hook, if set, is called when the rule fires, before the error is
	// returned; crash tests use it to kill the process at a chosen point.
	Hook func(op Op, h backend.Handle)
}

type rule struct {
	Rule
	seen, fired int
}

// Backend injects faults into the backend it wraps.
type Backend struct {
	be   backend.Backend
	torn backend.Backend // where torn copies are written

	mu       sync.Mutex
	rules    []*rule
	rng      *rand.Rand
	injected int
}

var _ backend.Backend = (*Backend)(nil)

// New wraps be; seed makes probabilistic rules reproducible.
func New(be backend.Backend, seed uint64) *Backend {
	return &Backend{be: be, torn: be, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// TearOn sets where torn copies are written (default: the wrapped
// backend), before New's result is used. A store whose writes are not
// atomic tears a write in place, before the failed call returns. When the
// wrapped backend reaches the store through a network that may deliver a
// request late (a fault proxy), pass a direct connection: a torn copy
// delivered late could land after the retry that replaced it, which no
// store does.
func (b *Backend) TearOn(be backend.Backend) { b.torn = be }

// Add installs a rule.
func (b *Backend) Add(r Rule) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rules = append(b.rules, &rule{Rule: r})
}

// Clear removes all rules.
func (b *Backend) Clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rules = nil
}

// Injected returns how many faults fired so far.
func (b *Backend) Injected() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.injected
}

// check finds the first rule firing for this call. It returns the delay to
// apply and the rule that fired, if any.
func (b *Backend) check(op Op, h backend.Handle) (time.Duration, *rule) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var delay time.Duration
	for _, r := range b.rules {
		if (r.Op != "" && r.Op != op) || (r.Type != 0 && r.Type != h.Type) {
			continue
		}
		r.seen++
		if r.seen <= r.Skip || (r.Times > 0 && r.fired >= r.Times) {
			continue
		}
		if r.Probability > 0 && b.rng.Float64() >= r.Probability {
			continue
		}
		delay += r.Delay
		if r.Err == nil && r.Delay > 0 && !r.Torn && r.Hook == nil {
			r.fired++
			continue // a pure delay rule
		}
		r.fired++
		b.injected++
		return delay, r
	}
	return delay, nil
}

func (b *Backend) before(ctx context.Context, op Op, h backend.Handle) (*rule, error) {
	delay, r := b.check(op, h)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if r == nil {
		return nil, nil
	}
	if r.Hook != nil {
		r.Hook(op, h)
	}
	if r.Err != nil {
		return r, r.Err
	}
	return r, ErrInjected
}

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() backend.Backend { return b.be }

// Location returns the wrapped location.
func (b *Backend) Location() string { return b.be.Location() }

// Save may fail, optionally after storing a torn copy.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data io.ReaderAt, size int64) error {
	r, err := b.before(ctx, Save, h)
	if err != nil {
		if r != nil && r.Torn && size > 1 {
			_ = b.torn.Save(ctx, h, data, size/2)
		}
		return err
	}
	return b.be.Save(ctx, h, data, size)
}

// Load may fail before reading.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	if _, err := b.before(ctx, Load, h); err != nil {
		return err
	}
	return b.be.Load(ctx, h, offset, length, fn)
}

// Stat may fail.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if _, err := b.before(ctx, Stat, h); err != nil {
		return backend.FileInfo{}, err
	}
	return b.be.Stat(ctx, h)
}

// List may fail.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if _, err := b.before(ctx, List, backend.Handle{Type: t}); err != nil {
		return err
	}
	return b.be.List(ctx, t, fn)
}

// Remove may fail.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if _, err := b.before(ctx, Remove, h); err != nil {
		return err
	}
	return b.be.Remove(ctx, h)
}

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }
