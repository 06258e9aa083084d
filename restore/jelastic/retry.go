package jelastic

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"
)

// RetryPolicy bounds how transport failures are retried. API errors
// (result != 0) are never retried.
type RetryPolicy struct {
	// MaxAttempts is the total number of tries, including the first.
	// Values below 1 mean 1 (no retry).
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt; it doubles for
	// every further attempt up to MaxBackoff. A random jitter of up to half
	// the wait is subtracted so that many clients do not retry in step.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// DefaultRetryPolicy is used when New gets no WithRetry option.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, InitialBackoff: 500 * time.Millisecond, MaxBackoff: 10 * time.Second}
}

func (p RetryPolicy) attempts() int {
	return max(p.MaxAttempts, 1)
}

// backoff returns the wait before attempt n+1, after n failed attempts (n ≥ 1).
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.InitialBackoff
	if d <= 0 {
		return 0
	}
	for i := 1; i < n; i++ {
		d *= 2
		if p.MaxBackoff > 0 && d >= p.MaxBackoff {
			d = p.MaxBackoff
			break
		}
	}
	if p.MaxBackoff > 0 && d > p.MaxBackoff {
		d = p.MaxBackoff
	}
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(rand.Int64N(half + 1))
	}
	return d
}

// retryClass says how safe it is to send a request again after a failure.
type retryClass int

const (
	noRetry           retryClass = iota // permanent failure, or the caller gave up
	retryIfUnsent                       // the request never left: always safe
	retryIfIdempotent                   // the server may have acted on it
)

// classify decides whether a failed attempt may be repeated. err is the
// error from http.Client.Do (nil when a response arrived) and status the
// HTTP status of that response.
func classify(ctx context.Context, err error, status int) retryClass {
	if ctx.Err() != nil {
		return noRetry
	}
	if err == nil {
		if status >= 500 || status == http.StatusTooManyRequests {
			return retryIfIdempotent
		}
		return noRetry
	}
	if errors.Is(err, context.Canceled) {
		return noRetry
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return retryIfUnsent
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return retryIfUnsent
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && (dnsErr.IsTemporary || dnsErr.IsTimeout) {
		return retryIfUnsent
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return retryIfIdempotent
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return retryIfIdempotent
	}
	return noRetry
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
