// Command jelastic-sim serves a local simulation of the Jelastic REST API
// subset mbackup uses, backed by folders under --root and databases on the
// PostgreSQL server at --pg. See package jelasticsim for the behaviour.
//
//	jelastic-sim --listen 127.0.0.1:PORT --root DIR --pg POSTGRES_URL --token TOKEN
//
// The API is then at http://127.0.0.1:PORT/1.0/. The token may also come
// from $JELASTIC_SIM_TOKEN, which keeps it out of process listings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mbackup/mbackup/restore/jelastic/jelasticsim"
)

// Exit codes per the project contract.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it parses args, serves until ctx ends
// and returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("jelastic-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen       = fs.String("listen", "127.0.0.1:8780", "`ADDR` to listen on (port 0 picks a free port)")
		root         = fs.String("root", "", "`DIR` holding one folder per environment (required)")
		pg           = fs.String("pg", "", "PostgreSQL connection `URL` of a role that may create and drop databases (required)")
		token        = fs.String("token", "", "access `TOKEN` accepted in the session parameter (or $JELASTIC_SIM_TOKEN)")
		login        = fs.String("login", "", "`EMAIL` that signin accepts, with --password-file")
		passwordFile = fs.String("password-file", "", "`FILE` holding the signin password (or $JELASTIC_SIM_PASSWORD)")
		domain       = fs.String("domain", jelasticsim.DefaultDomain, "hoster `DOMAIN`: environments are NAME.DOMAIN")
		cmdTimeout   = fs.Duration("cmd-timeout", jelasticsim.DefaultCmdTimeout, "time limit of one exec request's commands")
		maxOutput    = fs.Int("max-output", jelasticsim.DefaultMaxOutput, "captured stdout/stderr `BYTES` per node and exec request")
		logLevel     = fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: jelastic-sim --listen ADDR --root DIR --pg POSTGRES_URL --token TOKEN [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "jelastic-sim: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q; all settings are flags (see --help)", fs.Arg(0))
	}
	if *root == "" {
		return usage("--root is required: the folder holding one folder per environment")
	}
	if *pg == "" {
		return usage("--pg is required, e.g. --pg postgres://postgres@127.0.0.1:5432/postgres")
	}
	if *token == "" {
		*token = getenv("JELASTIC_SIM_TOKEN")
	}
	password := getenv("JELASTIC_SIM_PASSWORD")
	if *passwordFile != "" {
		b, err := os.ReadFile(*passwordFile)
		if err != nil {
			return usage("--password-file: %v", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if *login != "" && password == "" {
		return usage("--login needs a password: --password-file FILE or $JELASTIC_SIM_PASSWORD")
	}
	if *token == "" && *login == "" {
		return usage("--token is required (or $JELASTIC_SIM_TOKEN, or --login with a password)")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usage("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	sim, err := jelasticsim.New(jelasticsim.Config{
		Root: *root, PG: *pg, Token: *token, Login: *login, Password: password,
		Domain: *domain, CmdTimeout: *cmdTimeout, MaxOutput: *maxOutput, Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(stderr, "jelastic-sim: %v\n", err)
		return exitUsage
	}
	checkCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = sim.CheckPG(checkCtx)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "jelastic-sim: PostgreSQL given by --pg is not usable: %v\n", err)
		return exitFailure
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "jelastic-sim: listen on %s: %v\n", *listen, err)
		return exitFailure
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	logger.Info("jelastic-sim listening", "url", "http://"+ln.Addr().String()+"/1.0", "root", *root)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "jelastic-sim: serve: %v\n", err)
		return exitFailure
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintf(stderr, "jelastic-sim: shutdown: %v\n", err)
		return exitFailure
	}
	logger.Info("jelastic-sim stopped")
	return exitOK
}
