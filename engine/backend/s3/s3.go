// Package s3 stores a repository in an S3 bucket through minio-go.
//
// Each repository file is one object, written with a single PUT, which S3
// makes atomic: an object is either absent or complete. Packs are kept under
// minio-go's multipart threshold for that reason. Objects are never
// modified, only created and deleted.
//
// minio-go's own retry loop is disabled: retries happen in one place, the
// retry backend, so that they are counted, logged and bounded uniformly.
//
// A connection that makes no progress for Config.IdleTimeout fails the
// request: a server or network that stops moving bytes in the middle of an
// upload or download (a full TCP window is never a timeout on its own)
// would otherwise hang a backup forever instead of failing it and letting
// the retry backend try again.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mbackup/mbackup/engine/backend"
)

// Config says where the repository lives and how to reach it.
type Config struct {
	Endpoint  string // host[:port]
	Secure    bool   // https
	Bucket    string
	Prefix    string // folder inside the bucket, may be empty
	Region    string
	AccessKey string
	SecretKey string
	// Transport overrides the HTTP transport (tests inject faults here).
	Transport http.RoundTripper
	// IdleTimeout fails a request whose connection sends and receives
	// nothing for this long (default DefaultIdleTimeout). It applies to
	// the default transport only.
	IdleTimeout time.Duration
}

// DefaultIdleTimeout is longer than any pause of a healthy S3 server
// (minio-go waits a minute for response headers) and short enough that a
// stalled connection is retried within the night.
const DefaultIdleTimeout = 2 * time.Minute

// Backend is a repository in an S3 bucket.
type Backend struct {
	client *minio.Client
	core   minio.Core // for GETs that answer in one request
	cfg    Config
}

var _ backend.Backend = (*Backend)(nil)

// Open connects to the bucket. It does not check that the bucket exists;
// CheckBucket does.
func Open(cfg Config) (*Backend, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3: endpoint and bucket are required")
	}
	transport := cfg.Transport
	if transport == nil {
		tr, err := minio.DefaultTransport(cfg.Secure)
		if err != nil {
			return nil, fmt.Errorf("s3: transport: %w", err)
		}
		idle := cfg.IdleTimeout
		if idle <= 0 {
			idle = DefaultIdleTimeout
		}
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			ic := &idleConn{Conn: c, timeout: idle}
			ic.progress()
			return ic, nil
		}
		transport = tr
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    transport,
		MaxRetries:   1,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: connect to %s: %w", cfg.Endpoint, err)
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	return &Backend{client: client, core: minio.Core{Client: client}, cfg: cfg}, nil
}

// idleConn fails the pending reads and writes of a connection that moved
// no byte in either direction for timeout. Progress either way counts: the
// response is legitimately silent while a large upload is still being
// sent. Waiting for a response's headers is bounded by the transport's own
// (shorter) timeout, and an idle pooled connection is closed by the
// transport before this one fires.
type idleConn struct {
	net.Conn
	timeout  time.Duration
	extended atomic.Int64 // unix nanoseconds of the last deadline update
	stalled  atomic.Bool
}

// stallError is what every I/O on a stalled connection returns: the HTTP
// transport reports whichever of its reader and writer failed last, and
// "use of closed network connection" would hide the cause.
type stallError struct{ timeout time.Duration }

func (e *stallError) Error() string {
	return fmt.Sprintf("connection stalled: no data moved for %v (i/o timeout)", e.timeout)
}
func (e *stallError) Timeout() bool   { return true }
func (e *stallError) Temporary() bool { return true }
func (e *stallError) Unwrap() error   { return os.ErrDeadlineExceeded }

func (c *idleConn) check(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.stalled.Store(true)
	}
	if c.stalled.Load() {
		return &stallError{c.timeout}
	}
	return err
}

func (c *idleConn) progress() {
	now := time.Now()
	// Moving the deadline costs a timer update; once per few seconds of
	// a busy transfer is plenty.
	if now.UnixNano()-c.extended.Load() < int64(c.timeout/16) {
		return
	}
	c.extended.Store(now.UnixNano())
	_ = c.Conn.SetDeadline(now.Add(c.timeout)) // a closed connection reports itself on the next I/O
}

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.progress()
	}
	return n, c.check(err)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.progress() // starting a request is activity too
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.progress()
	}
	return n, c.check(err)
}

// Location returns s3:scheme://endpoint/bucket/prefix, without credentials.
func (b *Backend) Location() string {
	scheme := "http"
	if b.cfg.Secure {
		scheme = "https"
	}
	return fmt.Sprintf("s3:%s://%s/%s", scheme, b.cfg.Endpoint, path.Join(b.cfg.Bucket, b.cfg.Prefix))
}

func (b *Backend) key(h backend.Handle) string {
	return path.Join(b.cfg.Prefix, backend.Path(h))
}

// CheckBucket verifies that the bucket exists and the credentials work.
func (b *Backend) CheckBucket(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.cfg.Bucket)
	if err != nil {
		return b.classify(err, "s3: check bucket %q at %s", b.cfg.Bucket, b.cfg.Endpoint)
	}
	if !ok {
		return backend.Permanent(fmt.Errorf("s3: bucket %q does not exist at %s (create it, or fix repository.url)", b.cfg.Bucket, b.cfg.Endpoint))
	}
	return nil
}

// CreateBucket creates the bucket if it does not exist.
func (b *Backend) CreateBucket(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.cfg.Bucket)
	if err != nil {
		return b.classify(err, "s3: check bucket %q", b.cfg.Bucket)
	}
	if ok {
		return nil
	}
	if err := b.client.MakeBucket(ctx, b.cfg.Bucket, minio.MakeBucketOptions{Region: b.cfg.Region}); err != nil {
		return b.classify(err, "s3: create bucket %q", b.cfg.Bucket)
	}
	return nil
}

// Save stores data with one PUT.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data io.ReaderAt, size int64) error {
	_, err := b.client.PutObject(ctx, b.cfg.Bucket, b.key(h), io.NewSectionReader(data, 0, size), size,
		minio.PutObjectOptions{
			ContentType:      "application/octet-stream",
			DisableMultipart: true,
			// The server checks the body against its MD5. Over plain
			// HTTP minio-go would also sign every chunk of the body with
			// SHA-256 (over TLS it does not): two more passes over every
			// pack, ours and the server's, for what MD5 already catches.
			SendContentMd5:       true,
			DisableContentSha256: true,
		})
	if err != nil {
		return b.classify(err, "save %v", h)
	}
	return nil
}

// Load streams a range of the object to fn.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64, fn func(io.Reader) error) error {
	opts := minio.GetObjectOptions{}
	if offset > 0 || length > 0 {
		end := int64(0)
		if length > 0 {
			end = offset + length - 1
		}
		if err := opts.SetRange(offset, end); err != nil {
			return fmt.Errorf("load %v: %w", h, err)
		}
	}
	// Core's GetObject sends the GET at once and reports its status;
	// Client's lazy Object would send a HEAD first, a second round trip
	// (and a second chance of a transient failure) for every load.
	body, _, _, err := b.core.GetObject(ctx, b.cfg.Bucket, b.key(h), opts)
	if err != nil {
		return b.classify(err, "load %v", h)
	}
	defer body.Close()
	if err := fn(body); err != nil {
		return b.classify(err, "load %v", h)
	}
	// A body closed before its end takes its connection with it: the next
	// load would pay a new handshake. fn usually reads exactly the range,
	// so this reads nothing but the end.
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	return nil
}

// drainLimit bounds what Load reads past what fn wanted to keep the
// connection; beyond it, a new connection is cheaper.
const drainLimit = 64 << 10

// Stat returns the object's size and modification time.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	oi, err := b.client.StatObject(ctx, b.cfg.Bucket, b.key(h), minio.StatObjectOptions{})
	if err != nil {
		return backend.FileInfo{}, b.classify(err, "stat %v", h)
	}
	return backend.FileInfo{Name: h.Name, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// List calls fn for every object of type t.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	prefix := path.Join(b.cfg.Prefix, t.Dir()) + "/"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if fn fails
	for oi := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			return b.classify(oi.Err, "list %v files", t)
		}
		name := path.Base(oi.Key)
		if strings.HasSuffix(oi.Key, "/") || strings.HasPrefix(name, ".") {
			continue
		}
		if t != backend.PackFile && path.Dir(oi.Key) != strings.TrimSuffix(prefix, "/") {
			continue // not directly in the type's folder
		}
		if err := fn(backend.FileInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Remove deletes the object.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	err := b.client.RemoveObject(ctx, b.cfg.Bucket, b.key(h), minio.RemoveObjectOptions{})
	if err != nil && !isNotFound(err) {
		return b.classify(err, "remove %v", h)
	}
	return nil
}

// Close does nothing; connections are pooled by the HTTP transport.
func (b *Backend) Close() error { return nil }

func isNotFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NotFound"
}

// classify wraps err with the operation and maps S3 error codes onto
// backend errors: missing objects match ErrNotExist, configuration problems
// are permanent, the rest stays retryable. minio-go's error type must be
// inspected before wrapping, as ToErrorResponse does not unwrap.
func (b *Backend) classify(err error, format string, args ...any) error {
	op := fmt.Sprintf(format, args...)
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%s: %w (%v)", op, backend.ErrNotExist, err)
	case "NoSuchBucket":
		return backend.Permanent(fmt.Errorf("%s: %w (bucket %q does not exist at %s: create it or fix repository.url)", op, err, b.cfg.Bucket, b.cfg.Endpoint))
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidBucketName", "AllAccessDisabled":
		return backend.Permanent(fmt.Errorf("%s: %w (check the S3 access and secret keys and the bucket policy)", op, err))
	}
	// S3 messages ("Please reduce your request rate.", "We encountered an
	// internal error. Please try again.") do not say which status the
	// server answered; operators and provider support want it.
	if resp := minio.ToErrorResponse(err); resp.StatusCode >= 400 {
		status := strconv.Itoa(resp.StatusCode)
		if resp.Code != "" && !strings.HasPrefix(resp.Code, status) {
			status += " " + resp.Code
		}
		return fmt.Errorf("%s: %w (S3 %s)", op, err, status)
	}
	return fmt.Errorf("%s: %w", op, err)
}
