package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/faultproxy"
	"github.com/mbackup/mbackup/engine/backend/retry"
	"github.com/mbackup/mbackup/engine/backend/s3"
	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
)

// fastRetry keeps the tests quick; the policy's shape is what production
// uses.
var fastRetry = retry.Policy{Attempts: 5, Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}

// proxied returns a fresh bucket on the real S3 server reached through a
// fault proxy, the S3 backend talking to it, and a retrying backend on top.
func proxied(t *testing.T, idle time.Duration) (*faultproxy.Proxy, *s3.Backend, *retry.Backend) {
	t.Helper()
	srv := s3test.Start(t)
	cfg := srv.Config(t)
	p, err := faultproxy.New(cfg.Endpoint, 7)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	cfg.Endpoint = p.Addr()
	cfg.IdleTimeout = idle
	be, err := s3.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, be, retry.New(be, fastRetry, nil)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

var packHandle = backend.Handle{Type: backend.PackFile, Name: "ab" + strings.Repeat("1", 62)}

// Every kind of transient fault, on every kind of operation, is retried and
// the operation then succeeds with the bytes intact.
func TestTransientFaultsAreRetried(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("mbackup pack data "), 60_000) // ~1 MiB
	faults := []struct {
		name    string
		rule    faultproxy.Rule
		retried bool // false: the fault only slows the operation down
	}{
		{"503 SlowDown", faultproxy.Rule{Kind: faultproxy.Status, Status: 503}, true},
		{"500 InternalError", faultproxy.Rule{Kind: faultproxy.Status, Status: 500}, true},
		{"reset at once", faultproxy.Rule{Kind: faultproxy.Refuse}, true},
		{"reset mid-transfer", faultproxy.Rule{Kind: faultproxy.Reset, After: 300}, true},
		{"short stall", faultproxy.Rule{Kind: faultproxy.Stall, After: 200, Duration: 200 * time.Millisecond}, false},
		{"stall beyond the idle timeout", faultproxy.Rule{Kind: faultproxy.Stall, Duration: time.Hour}, true},
	}
	ops := []struct {
		name   string
		method string
		do     func(ctx context.Context, be backend.Backend) error
	}{
		{"save", "PUT", func(ctx context.Context, be backend.Backend) error {
			return backend.SaveBytes(ctx, be, packHandle, data)
		}},
		{"load", "GET", func(ctx context.Context, be backend.Backend) error {
			got, err := backend.ReadAll(ctx, be, packHandle)
			if err == nil && !bytes.Equal(got, data) {
				return errors.New("loaded bytes differ")
			}
			return err
		}},
		{"ranged load", "GET", func(ctx context.Context, be backend.Backend) error {
			got, err := backend.ReadAt(ctx, be, packHandle, 300_000, 500_000)
			if err == nil && !bytes.Equal(got, data[300_000:800_000]) {
				return errors.New("loaded range differs")
			}
			return err
		}},
		{"stat", "HEAD", func(ctx context.Context, be backend.Backend) error {
			fi, err := be.Stat(ctx, packHandle)
			if err == nil && fi.Size != int64(len(data)) {
				return errors.New("wrong size")
			}
			return err
		}},
		{"list", "GET", func(ctx context.Context, be backend.Backend) error {
			n := 0
			err := be.List(ctx, backend.PackFile, func(backend.FileInfo) error { n++; return nil })
			if err == nil && n != 1 {
				return errors.New("listed wrong count")
			}
			return err
		}},
	}
	p, raw, be := proxied(t, time.Second)
	ctx := context.Background()
	if err := backend.SaveBytes(ctx, raw, packHandle, data); err != nil {
		t.Fatal(err)
	}
	for _, f := range faults {
		for _, op := range ops {
			if f.rule.Kind == faultproxy.Reset && op.method == "HEAD" {
				continue // a HEAD exchange has no body to reset in the middle of
			}
			t.Run(f.name+"/"+op.name, func(t *testing.T) {
				p.Clear()
				rule := f.rule
				rule.Method, rule.Times = op.method, 2
				p.Add(rule)
				before, injected := be.Retries(), p.Stats().Total()
				if err := op.do(ctx, be); err != nil {
					t.Fatalf("%s with 2 transient faults: %v", op.name, err)
				}
				wantFaults, wantRetries := 2, int64(2)
				if !f.retried {
					wantFaults, wantRetries = 1, 0
				}
				if got := p.Stats().Total() - injected; got != wantFaults {
					t.Errorf("%d faults injected, want %d", got, wantFaults)
				}
				// Go's HTTP transport itself retries an idempotent
				// request when a reused connection breaks before the
				// answer starts (a reset or stall may be absorbed
				// there); an error answer is always ours to retry.
				got := be.Retries() - before
				if got > wantRetries || (f.rule.Kind == faultproxy.Status && got != wantRetries) {
					t.Errorf("%d retries, want %d", got, wantRetries)
				}
			})
		}
	}
	// Remove too.
	p.Clear()
	p.Add(faultproxy.Rule{Kind: faultproxy.Status, Method: "DELETE", Times: 1})
	if err := be.Remove(ctx, packHandle); err != nil {
		t.Fatalf("remove with a transient fault: %v", err)
	}
	if _, err := raw.Stat(ctx, packHandle); !backend.IsNotExist(err) {
		t.Fatalf("pack still there after remove: %v", err)
	}
}

// A fault that does not go away fails the operation after the policy's
// attempts, with an error that says what happened, and a failed save
// leaves no object behind.
func TestPersistentFaultsFailClearly(t *testing.T) {
	tests := []struct {
		name  string
		rule  faultproxy.Rule
		cause []string // any of these in the message
	}{
		{"503", faultproxy.Rule{Kind: faultproxy.Status, Status: 503}, []string{"503", "reduce your request rate"}},
		{"500", faultproxy.Rule{Kind: faultproxy.Status, Status: 500}, []string{"500", "internal error"}},
		// Go's HTTP transport reports a reset seen by its reader as the
		// writer's "use of closed network connection".
		{"connection reset", faultproxy.Rule{Kind: faultproxy.Reset, After: 100 << 10}, []string{"connection reset", "broken pipe", "EOF", "closed network connection"}},
		{"server gone", faultproxy.Rule{Kind: faultproxy.Refuse}, []string{"connection reset", "EOF", "broken pipe", "closed network connection"}},
		{"stalled connection", faultproxy.Rule{Kind: faultproxy.Stall, After: 100 << 10, Duration: time.Hour}, []string{"i/o timeout"}},
	}
	t.Parallel()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, raw, be := proxied(t, time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			data := randomBytes(t, 4<<20)
			rule := tt.rule
			rule.Method = "PUT"
			p.Add(rule)
			err := backend.SaveBytes(ctx, be, packHandle, data)
			if err == nil {
				t.Fatal("save succeeded through a persistent fault")
			}
			if ctx.Err() != nil {
				t.Fatalf("the save hung until the test's deadline: %v", err)
			}
			if !containsAny(err.Error(), tt.cause) {
				t.Errorf("error does not name the cause (%v): %v", tt.cause, err)
			}
			if !strings.Contains(err.Error(), "save pack") {
				t.Errorf("error does not name the operation and object: %v", err)
			}
			if got := be.Retries(); got != int64(fastRetry.Attempts-1) {
				t.Errorf("%d retries, want %d", got, fastRetry.Attempts-1)
			}
			p.Clear()
			if _, err := raw.Stat(context.Background(), packHandle); !backend.IsNotExist(err) {
				t.Errorf("a failed save left an object: %v", err)
			}
			// Downloads fail the same way.
			if err := backend.SaveBytes(context.Background(), raw, packHandle, data); err != nil {
				t.Fatal(err)
			}
			rule.Method = "GET"
			p.Add(rule)
			err = be.Load(ctx, packHandle, 0, 0, func(rd io.Reader) error {
				_, err := io.Copy(io.Discard, rd)
				return err
			})
			if err == nil || ctx.Err() != nil {
				t.Fatalf("load through a persistent fault: %v (deadline: %v)", err, ctx.Err())
			}
			if !containsAny(err.Error(), tt.cause) || !strings.Contains(err.Error(), "load pack") {
				t.Errorf("load error does not name operation and cause: %v", err)
			}
		})
	}
}

// The default idle timeout turns a connection that stops moving bytes in
// the middle of an upload into an error instead of a hang; without it the
// transport waits forever, since a full TCP window is no timeout.
func TestStalledUploadTimesOutWithDefaultTransport(t *testing.T) {
	p, raw, _ := proxied(t, 500*time.Millisecond)
	p.Add(faultproxy.Rule{Kind: faultproxy.Stall, Method: "PUT", After: 64 << 10, Duration: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := backend.SaveBytes(ctx, raw, packHandle, randomBytes(t, 16<<20))
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "i/o timeout") {
		t.Fatalf("want an i/o timeout before the deadline, got %v (deadline: %v)", err, ctx.Err())
	}
	if backend.IsPermanent(err) {
		t.Errorf("a timeout must be retryable: %v", err)
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(strings.ToLower(s), strings.ToLower(sub)) {
			return true
		}
	}
	return false
}

// A load is one request on a reused connection: every extra round trip
// or handshake is latency and server work on each pack a restore reads,
// and one more chance for a transient fault to cost an attempt.
func TestLoadIsOneRequest(t *testing.T) {
	t.Parallel()
	p, raw, _ := proxied(t, 0)
	ctx := context.Background()
	data := randomBytes(t, 64<<10)
	if err := backend.SaveBytes(ctx, raw, packHandle, data); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		offset, length int64
	}{
		{"whole", 0, 0},
		{"range", 1000, 5000},
		{"tail", int64(len(data)) - 100, 0},
		{"exact read of a range", 300, 700},
	}
	conns := p.Stats().Connections
	for _, tt := range tests {
		before := p.Stats().Requests
		var got []byte
		err := raw.Load(ctx, packHandle, tt.offset, tt.length, func(r io.Reader) error {
			var err error
			got, err = io.ReadAll(r)
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		end := int64(len(data))
		if tt.length > 0 {
			end = tt.offset + tt.length
		}
		if !bytes.Equal(got, data[tt.offset:end]) {
			t.Errorf("%s: got %d bytes, want %d", tt.name, len(got), end-tt.offset)
		}
		if n := p.Stats().Requests - before; n != 1 {
			t.Errorf("%s: %d requests, want 1", tt.name, n)
		}
	}
	// ReadAtInto reads exactly the range and never asks for more: the
	// body must still be finished so that its connection is reused.
	for range 5 {
		if _, err := backend.ReadAtInto(ctx, raw, packHandle, 10, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Stats().Connections - conns; n > 1 {
		t.Errorf("%d loads one after the other opened %d connections, want at most 1", len(tests)+5, n)
	}
}

// A body damaged on its way to the server is refused by it (Content-MD5)
// and sent again: nothing damaged is stored.
func TestCorruptedUploadIsRefused(t *testing.T) {
	t.Parallel()
	p, raw, be := proxied(t, 0)
	ctx := context.Background()
	data := randomBytes(t, 256<<10)
	p.Add(faultproxy.Rule{Kind: faultproxy.Corrupt, Method: "PUT", After: 100 << 10, Times: 1})
	before := be.Retries()
	if err := backend.SaveBytes(ctx, be, packHandle, data); err != nil {
		t.Fatal(err)
	}
	if p.Stats().Injected[faultproxy.Corrupt] != 1 {
		t.Fatal("no byte was corrupted: the test proves nothing")
	}
	if be.Retries()-before != 1 {
		t.Errorf("%d retries, want 1 (the server should refuse the damaged body)", be.Retries()-before)
	}
	got, err := backend.ReadAll(ctx, raw, packHandle)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored object differs from what was saved (%d bytes, %v)", len(got), err)
	}
}
