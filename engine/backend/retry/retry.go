// Package retry wraps a backend so that transient failures (S3 503s,
// timeouts, reset connections) are retried with capped exponential backoff.
//
// Errors marked backend.Permanent, missing files and cancelled contexts are
// returned at once: retrying them only delays a clear error message.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/mbackup/mbackup/engine/backend"
)

// Policy bounds the retries.
type Policy struct {
	Attempts int           // total attempts, including the first
	Initial  time.Duration // first backoff
	Max      time.Duration // backoff cap
}

// DefaultPolicy suits S3 over the internet: about a minute of patience.
var DefaultPolicy = Policy{Attempts: 8, Initial: 250 * time.Millisecond, Max: 15 * time.Second}

// Backend retries the operations of the backend it wraps.
type Backend struct {
	be      backend.Backend
	policy  Policy
	log     *slog.Logger
	retries atomic.Int64
}

var _ backend.Backend = (*Backend)(nil)

// New wraps be. A nil logger discards messages.
func New(be backend.Backend, p Policy, log *slog.Logger) *Backend {
	if p.Attempts < 1 {
		p.Attempts = 1
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{be: be, policy: p, log: log}
}

// Retries returns how many operations were retried so far.
func (b *Backend) Retries() int64 { return b.retries.Load() }

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() backend.Backend { return b.be }

func (b *Backend) do(ctx context.Context, op string, h backend.Handle, fn func() error) error {
	delay := b.policy.Initial
	var err error
	for attempt := 1; ; attempt++ {
		err = fn()
		if err == nil || backend.IsPermanent(err) || attempt >= b.policy.Attempts {
			return err
		}
		b.retries.Add(1)
		if h.Type == 0 {
			b.log.Warn("retrying storage operation", "op", op, "attempt", attempt, "delay", delay, "err", err)
		} else {
			b.log.Warn("retrying storage operation", "op", op, "file", h.String(), "attempt", attempt, "delay", delay, "err", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay *= 2
		if delay > b.policy.Max {
			delay = b.policy.Max
		}
	}
}

// Do runs a storage operation outside the Backend interface (an S3 bucket
// check) with the same policy, counting and logging.
func (b *Backend) Do(ctx context.Context, op string, fn func() error) error {
	return b.do(ctx, op, backend.Handle{}, fn)
}

// Location returns the wrapped backend's location.
func (b *Backend) Location() string { return b.be.Location() }

// Save retries the save; saves are idempotent because names are content
// hashes or are rewritten whole.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data io.ReaderAt, size int64) error {
	return b.do(ctx, "save", h, func() error { return b.be.Save(ctx, h, data, size) })
}

// TempFile returns the wrapped backend's temporary file, when it is a
// backend.FileStorer.
func (b *Backend) TempFile(t backend.FileType) (*os.File, error) {
	s, ok := b.be.(backend.FileStorer)
	if !ok {
		return nil, fmt.Errorf("%s: %w", b.be.Location(), errors.ErrUnsupported)
	}
	return s.TempFile(t)
}

// Store retries storing f; a failed store leaves f as it was.
func (b *Backend) Store(ctx context.Context, h backend.Handle, f *os.File) error {
	s, ok := b.be.(backend.FileStorer)
	if !ok {
		return fmt.Errorf("store %v: %w", h, errors.ErrUnsupported)
	}
	return b.do(ctx, "save", h, func() error { return s.Store(ctx, h, f) })
}

// Load retries the load, calling fn again from the start.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	return b.do(ctx, "load", h, func() error { return b.be.Load(ctx, h, offset, length, fn) })
}

// Stat retries the stat.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	var fi backend.FileInfo
	err := b.do(ctx, "stat", h, func() error {
		var err error
		fi, err = b.be.Stat(ctx, h)
		return err
	})
	return fi, err
}

// List retries a listing that failed before fn returned an error; entries
// already delivered are not delivered twice.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	seen := make(map[string]bool)
	var fnErr error
	return b.do(ctx, "list", backend.Handle{Type: t}, func() error {
		err := b.be.List(ctx, t, func(fi backend.FileInfo) error {
			if seen[fi.Name] {
				return nil
			}
			seen[fi.Name] = true
			if err := fn(fi); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
		if fnErr != nil {
			return backend.Permanent(fnErr)
		}
		return err
	})
}

// Remove retries the removal.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	return b.do(ctx, "remove", h, func() error { return b.be.Remove(ctx, h) })
}

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }
