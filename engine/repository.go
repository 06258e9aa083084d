package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/crypto"
)

// Errors callers tell apart.
var (
	// ErrNoRepository: the backend holds no repository.
	ErrNoRepository = errors.New("no repository found")
	// ErrRepositoryExists: init found a repository already.
	ErrRepositoryExists = errors.New("a repository already exists")
	// ErrWrongPassword: no key file opens with the password.
	ErrWrongPassword = crypto.ErrWrongPassword
)

// Options tune an open repository. Zero fields take the defaults.
type Options struct {
	// Uploaders is the number of packs uploaded at once (default 4).
	Uploaders int
	// Workers is the number of goroutines that hash, compress and encrypt
	// a stream (default GOMAXPROCS).
	Workers int
	// Compression overrides the repository's configured level.
	Compression Compression
	// KDF is the cost of new key files (tests lower it).
	KDF crypto.KDFParams
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
	// TempDir holds the (unlinked) files packs are assembled in before
	// upload (default os.TempDir()), unless the backend can hand over
	// files of its own (backend.FileStorer: the local folder).
	TempDir string
}

// Repository is an open repository. It is safe for concurrent use.
type Repository struct {
	be   backend.Backend
	key  *crypto.Key
	cfg  Config
	opts Options
	log  *slog.Logger

	enc       *zstd.Encoder // at the configured level
	streamEnc *zstd.Encoder // for large streams (see StreamOptions.Fast)
	dec       *zstd.Decoder

	idx     *masterIndex
	packers [3]*packer // by blob.Type
	uploads *uploader

	// failures counts pack uploads that failed; a session that saw it
	// change refuses to commit.
	failures atomic.Int64
	lastErr  atomic.Pointer[error]

	spools *spoolFiles

	// ended lists the sessions closed through this Repository.
	ended endedSessions

	treeCacheOnce sync.Once
	treeCache     *packCache

	// bufs recycles the buffers that hold compressed and sealed blobs.
	bufs sync.Pool

	closeOnce sync.Once
}

func (o *Options) setDefaults() {
	if o.Uploaders <= 0 {
		o.Uploaders = 4
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.KDF == (crypto.KDFParams{}) {
		o.KDF = crypto.DefaultKDFParams()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
}

// Init creates a new repository on be, protected by password. It refuses to
// touch a backend that already holds a repository.
func Init(ctx context.Context, be backend.Backend, password string, initOpts InitOptions, opts Options) (*Repository, error) {
	opts.setDefaults()
	if password == "" {
		return nil, errors.New("init repository: empty password")
	}
	_, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile})
	switch {
	case err == nil:
		return nil, fmt.Errorf("init %s: %w", be.Location(), ErrRepositoryExists)
	case !backend.IsNotExist(err):
		return nil, fmt.Errorf("init %s: %w", be.Location(), err)
	}
	cfg, err := newConfig(initOpts)
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", be.Location(), err)
	}
	key, err := crypto.NewRandomKey()
	if err != nil {
		return nil, err
	}
	r, err := newRepository(be, key, cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := r.initEncoders(); err != nil {
		return nil, err
	}
	r.initPackBuffers()
	// The key file goes first: a crash before the config is written leaves
	// a folder that init can be run on again.
	if _, err := r.AddKey(ctx, password); err != nil {
		return nil, fmt.Errorf("init %s: %w", be.Location(), err)
	}
	plain, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := r.saveSealed(ctx, backend.Handle{Type: backend.ConfigFile}, plain); err != nil {
		return nil, fmt.Errorf("init %s: %w", be.Location(), err)
	}
	return r, nil
}

// Open opens the repository on be with password.
func Open(ctx context.Context, be backend.Backend, password string, opts Options) (*Repository, error) {
	opts.setDefaults()
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); err != nil {
		if backend.IsNotExist(err) {
			return nil, fmt.Errorf("open %s: %w (run mbackup init first, or fix repository.url)", be.Location(), ErrNoRepository)
		}
		return nil, fmt.Errorf("open %s: %w", be.Location(), err)
	}
	key, err := findKey(ctx, be, password)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", be.Location(), err)
	}
	r, err := newRepository(be, key, Config{}, opts)
	if err != nil {
		return nil, err
	}
	plain, err := r.loadSealed(ctx, backend.Handle{Type: backend.ConfigFile}, false)
	if err != nil {
		return nil, fmt.Errorf("open %s: read config: %w", be.Location(), err)
	}
	if err := json.Unmarshal(plain, &r.cfg); err != nil {
		return nil, fmt.Errorf("open %s: decode config: %w", be.Location(), err)
	}
	if err := r.cfg.validate(); err != nil {
		return nil, fmt.Errorf("open %s: %w", be.Location(), err)
	}
	if err := r.initEncoders(); err != nil {
		return nil, err
	}
	r.initPackBuffers()
	return r, nil
}

// initEncoders creates the zstd encoders once the compression level is
// known (from the configuration, or the options' override).
func (r *Repository) initEncoders() error {
	level := zstd.SpeedDefault
	switch r.compression() {
	case CompressionFastest:
		level = zstd.SpeedFastest
	case CompressionBetter:
		level = zstd.SpeedBetterCompression
	}
	common := []zstd.EOption{
		zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(r.opts.Workers),
		zstd.WithWindowSize(1 << 20),
		zstd.WithLowerEncoderMem(true),
	}
	var err error
	if r.enc, err = zstd.NewWriter(nil, append(common, zstd.WithEncoderLevel(level))...); err != nil {
		return err
	}
	r.streamEnc = r.enc
	if r.compression() == CompressionAuto {
		r.streamEnc, err = zstd.NewWriter(nil, append(common, zstd.WithEncoderLevel(zstd.SpeedFastest))...)
	}
	return err
}

func newRepository(be backend.Backend, key *crypto.Key, cfg Config, opts Options) (*Repository, error) {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return nil, err
	}
	r := &Repository{be: be, key: key, cfg: cfg, opts: opts, log: opts.Logger, dec: dec}
	r.bufs.New = func() any { b := make([]byte, 0, 1<<20); return &b }
	r.idx = newMasterIndex()
	for _, t := range []blob.Type{blob.Data, blob.Tree} {
		r.packers[t] = &packer{typ: t}
	}
	r.uploads = newUploader(r, opts.Uploaders)
	return r, nil
}

// initPackBuffers sets up the spool files packs are assembled in: one per
// uploader plus the packs being filled are kept for reuse.
func (r *Repository) initPackBuffers() {
	r.spools = newSpoolFiles(r.opts.TempDir, r.opts.Uploaders+2, r.be)
}

// Config returns the repository's configuration.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the storage the repository lives on.
func (r *Repository) Backend() backend.Backend { return r.be }

// Key returns the master key (for packages that seal or verify blobs).
func (r *Repository) Key() *crypto.Key { return r.key }

// Logger returns the repository's logger.
func (r *Repository) Logger() *slog.Logger { return r.log }

// Workers returns the number of CPU workers a stream uses.
func (r *Repository) Workers() int { return r.opts.Workers }

func (r *Repository) compression() Compression {
	if r.opts.Compression != "" {
		return r.opts.Compression
	}
	return r.cfg.Compression
}

// Close waits for uploads in flight and releases resources. Data not yet
// flushed is dropped: it was never referenced by a snapshot.
func (r *Repository) Close() error {
	r.closeOnce.Do(func() {
		r.uploads.close()
		if r.spools != nil {
			r.spools.close()
		}
		if r.enc != nil {
			if r.streamEnc != r.enc {
				_ = r.streamEnc.Close()
			}
			_ = r.enc.Close()
		}
		r.dec.Close()
	})
	return r.be.Close()
}

// keyMeta is stored inside a key file's sealed payload.
type keyMeta struct {
	Created  time.Time `json:"created"`
	Hostname string    `json:"hostname"`
}

// AddKey stores a new key file that opens the repository with password and
// returns its ID.
func (r *Repository) AddKey(ctx context.Context, password string) (blob.ID, error) {
	host, _ := os.Hostname()
	meta, _ := json.Marshal(keyMeta{Created: time.Now().UTC(), Hostname: host})
	w, err := crypto.Wrap(r.key, password, meta, r.opts.KDF)
	if err != nil {
		return blob.ID{}, fmt.Errorf("add key: %w", err)
	}
	data, err := json.Marshal(w)
	if err != nil {
		return blob.ID{}, err
	}
	id := blob.Hash(data)
	if err := backend.SaveBytes(ctx, r.be, backend.Handle{Type: backend.KeyFile, Name: id.String()}, data); err != nil {
		return blob.ID{}, fmt.Errorf("add key: %w", err)
	}
	return id, nil
}

// KeyInfo describes a key file. Its metadata is sealed with the master
// key it wraps, so it is known only for key files that open with the
// password given to Keys.
type KeyInfo struct {
	ID       blob.ID
	Opens    bool // the key file opens with the password given
	Created  time.Time
	Hostname string
}

// Keys lists every key file, reading the metadata of those that open with
// password.
func (r *Repository) Keys(ctx context.Context, password string) ([]KeyInfo, error) {
	var names []string
	if err := r.be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(names))
	for _, name := range names {
		id, err := blob.ParseID(name)
		if err != nil {
			continue
		}
		ki := KeyInfo{ID: id}
		if w, err := loadWrappedKey(ctx, r.be, name); err == nil {
			if _, metaRaw, err := w.Unwrap(password); err == nil {
				var meta keyMeta
				_ = json.Unmarshal(metaRaw, &meta)
				ki.Opens, ki.Created, ki.Hostname = true, meta.Created, meta.Hostname
			}
		}
		out = append(out, ki)
	}
	return out, nil
}

// RemoveKey deletes a key file. It refuses to delete the last one.
func (r *Repository) RemoveKey(ctx context.Context, id blob.ID) error {
	n := 0
	found := false
	err := r.be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		n++
		found = found || fi.Name == id.String()
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("remove key %s: %w", id.Short(), backend.ErrNotExist)
	}
	if n <= 1 {
		return fmt.Errorf("remove key %s: it is the only key; add another first", id.Short())
	}
	return r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: id.String()})
}

func loadWrappedKey(ctx context.Context, be backend.Backend, name string) (*crypto.WrappedKey, error) {
	data, err := backend.ReadAll(ctx, be, backend.Handle{Type: backend.KeyFile, Name: name})
	if err != nil {
		return nil, err
	}
	var w crypto.WrappedKey
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("key file %.8s: %w", name, err)
	}
	return &w, nil
}

// findKey tries every key file with the password.
func findKey(ctx context.Context, be backend.Backend, password string) (*crypto.Key, error) {
	var names []string
	if err := be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	if len(names) == 0 {
		return nil, errors.New("the repository has no key files")
	}
	// Report a wrong password only when some key file was readable and
	// refused it; if none could be read, the storage error is the news.
	var readErr error
	tried := false
	for _, name := range names {
		w, err := loadWrappedKey(ctx, be, name)
		if err != nil {
			readErr = err
			continue
		}
		key, _, err := w.Unwrap(password)
		if err == nil {
			return key, nil
		}
		if errors.Is(err, crypto.ErrWrongPassword) {
			tried = true
		} else {
			readErr = err
		}
	}
	if !tried && readErr != nil {
		return nil, readErr
	}
	return nil, ErrWrongPassword
}
