package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/backend/retry"
	"github.com/mbackup/mbackup/engine/backend/s3"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

// app holds what every command shares: global flags, output streams, and
// the configuration and repository, opened on first use.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	configPath string
	json       bool
	quiet      bool
	verbose    bool

	cfg  *config.Config
	repo *engine.Repository
	log  *slog.Logger

	cpuProfile string
	tracePath  string
	stopProf   []func()

	mu sync.Mutex // serialises stderr lines from parallel jobs
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "mbackup",
		Short:         "Fleet backup and restore for Moodle sites",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.cpuProfile != "" {
				stop, err := startProfile(a.cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile)
				if err != nil {
					return err
				}
				a.stopProf = append(a.stopProf, stop)
			}
			if a.tracePath != "" {
				stop, err := startProfile(a.tracePath, trace.Start, trace.Stop)
				if err != nil {
					return err
				}
				a.stopProf = append(a.stopProf, stop)
			}
			level := slog.LevelWarn
			if a.verbose {
				level = slog.LevelDebug
			}
			if a.quiet {
				level = slog.LevelError
			}
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "configuration file (default: $MBACKUP_CONFIG, ./mbackup.yaml, /etc/mbackup/mbackup.yaml)")
	pf.BoolVar(&a.json, "json", false, "print machine-readable JSON on stdout")
	pf.BoolVar(&a.quiet, "quiet", false, "print only errors")
	pf.BoolVar(&a.verbose, "verbose", false, "print more detail")
	pf.StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile to this file (for performance work)")
	_ = pf.MarkHidden("cpuprofile")
	pf.StringVar(&a.tracePath, "trace", "", "write an execution trace to this file (where the wall time goes: go tool trace)")
	_ = pf.MarkHidden("trace")
	for _, c := range a.commands() {
		root.AddCommand(c)
	}
	return root
}

// nargs returns a cobra argument check whose errors are usage errors.
func nargs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &usageError{fmt.Errorf("%s: %w (see mbackup %s --help)", cmd.Name(), err, cmd.Name())}
		}
		return nil
	}
}

func (a *app) close() {
	if a.repo != nil {
		a.repo.Close()
	}
	for _, stop := range a.stopProf {
		stop()
	}
}

// startCPUProfile profiles the process until the returned func is called.
// startProfile creates path and starts a profile writing to it; the
// returned function stops it.
func startProfile(path string, start func(io.Writer) error, stop func()) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { stop(); f.Close() }, nil
}

// config loads the configuration once.
func (a *app) config() (*config.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	path, err := config.Find(a.configPath)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		a.warnf("%s", strings.TrimPrefix(w, "warning: "))
	}
	a.cfg = cfg
	return cfg, nil
}

// backend opens the storage named by the configuration, with retries.
func (a *app) backend(ctx context.Context, cfg *config.Config) (backend.Backend, error) {
	u := cfg.Repository.URL
	switch u.Kind {
	case config.KindS3:
		ak, sk, err := cfg.S3Credentials()
		if err != nil {
			return nil, err
		}
		be, err := s3.Open(s3.Config{Endpoint: u.Endpoint, Secure: u.Secure, Bucket: u.Bucket, Prefix: u.Prefix,
			Region: cfg.Repository.S3.Region, AccessKey: ak.Value(), SecretKey: sk.Value()})
		if err != nil {
			return nil, err
		}
		rb := retry.New(be, retry.DefaultPolicy, a.log)
		// One 503 at start-up must not fail the night's backup: the check
		// is retried like every other request.
		if err := rb.Do(ctx, "check bucket", func() error { return be.CheckBucket(ctx) }); err != nil {
			return nil, err
		}
		return rb, nil
	default:
		be, err := local.Open(u.Path)
		if err != nil {
			return nil, err
		}
		return retry.New(be, retry.Policy{Attempts: 3, Initial: 100 * time.Millisecond, Max: time.Second}, a.log), nil
	}
}

func (a *app) engineOptions(cfg *config.Config) engine.Options {
	opts := engine.Options{Logger: a.log, Compression: engine.Compression(cfg.Repository.Compression)}
	if cfg.Repository.URL.Kind == config.KindLocal {
		opts.Uploaders = 2
	}
	return opts
}

// repository opens the configured repository once.
func (a *app) repository(ctx context.Context) (*engine.Repository, *config.Config, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, nil, err
	}
	if a.repo != nil {
		return a.repo, cfg, nil
	}
	pw, err := cfg.RepositoryPassword()
	if err != nil {
		return nil, nil, err
	}
	be, err := a.backend(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	repo, err := engine.Open(ctx, be, pw.Value(), a.engineOptions(cfg))
	// The key derivation just used 32 MiB that are garbage now: hand them
	// back to the operating system rather than carry them as resident
	// memory through the whole command.
	debug.FreeOSMemory()
	if err != nil {
		if strings.Contains(err.Error(), engine.ErrWrongPassword.Error()) {
			return nil, nil, fmt.Errorf("%w (check repository.password_file / password_env in %s)", err, cfg.File)
		}
		return nil, nil, err
	}
	a.repo = repo
	return repo, cfg, nil
}

// openRepository starts opening the repository in the background and
// returns a function that waits for it, so that a command can start work
// that needs no repository (a backup's pg_dump) while the key is derived.
func (a *app) openRepository(ctx context.Context) func(context.Context) (*engine.Repository, error) {
	var (
		repo *engine.Repository
		err  error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		repo, _, err = a.repository(ctx)
	}()
	return func(context.Context) (*engine.Repository, error) {
		<-done
		return repo, err
	}
}

// printJSON writes v as the command's one JSON document.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes human output to stdout unless --json or --quiet.
func (a *app) printf(format string, args ...any) {
	if a.json || a.quiet {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintf(a.stdout, format, args...)
}

// warnf writes a warning line to stderr unless --quiet.
func (a *app) warnf(format string, args ...any) {
	if a.quiet {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintf(a.stderr, "warning: "+format+"\n", args...)
}

// errorf writes an error line to stderr.
func (a *app) errorf(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintf(a.stderr, "mbackup: "+format+"\n", args...)
}

// stderrIsTerminal decides whether progress bars are drawn.
func (a *app) stderrIsTerminal() bool {
	f, ok := a.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && !a.quiet
}

// stdinIsTerminal decides whether a confirmation can be asked.
func (a *app) stdinIsTerminal() bool {
	f, ok := a.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// explainDBAuth adds where the password of environment name's database
// comes from when its server refused the credentials.
func explainDBAuth(err error, name, configFile string) error {
	var ae *postgres.AuthError
	if !errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("%w (check database_password_file of %s in %s, else the password in its database URL, PGPASSWORD or ~/.pgpass)", err, name, configFile)
}
