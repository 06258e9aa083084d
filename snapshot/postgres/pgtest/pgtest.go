package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL server that requires a password.
type Server struct {
	Addr     string // host:port on loopback
	User     string // its superuser
	Password string // the superuser's password

	prog string
	args []string
	cred *syscall.Credential // whom the server runs as; nil: ourselves
	log  string              // the server's output

	mu   sync.Mutex // guards cmd and done across Restart
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// URL returns a connection URL of database db as the superuser, without
// the password.
func (s *Server) URL(db string) string {
	return (&url.URL{Scheme: "postgres", User: url.User(s.User), Host: s.Addr, Path: "/" + db}).String()
}

// AdminURL returns a connection URL of the postgres database with the
// superuser's password in it, for test set-up.
func (s *Server) AdminURL() string {
	return (&url.URL{Scheme: "postgres", User: url.UserPassword(s.User, s.Password), Host: s.Addr, Path: "/postgres"}).String()
}

// Start initialises and starts a server for the test; it is stopped and
// its files removed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, cleanup, err := start(t.Context())
	if cleanup != nil {
		t.Cleanup(cleanup)
	}
	if err != nil {
		t.Fatalf("start a password-checking PostgreSQL server: %v", err)
	}
	return s
}

func start(ctx context.Context) (*Server, func(), error) {
	bin, err := binDir()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "mbackup-pgtest-")
	if err != nil {
		return nil, nil, err
	}
	var stop func()
	cleanup := func() {
		if stop != nil {
			stop()
		}
		_ = os.RemoveAll(dir)
	}
	cred, err := credential(dir)
	if err != nil {
		return nil, cleanup, err
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	s := &Server{User: "postgres", Password: "pgtest-" + hex.EncodeToString(b[:]), log: filepath.Join(dir, "server.log")}
	pwFile := filepath.Join(dir, "pwfile")
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(pwFile, []byte(s.Password+"\n"), 0o600); err != nil {
		return nil, cleanup, err
	}
	if err := chown(cred, pwFile); err != nil {
		return nil, cleanup, err
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "--pgdata="+data, "--username="+s.User,
		"--auth=scram-sha-256", "--pwfile="+pwFile, "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, cleanup, fmt.Errorf("initdb: %v: %s", err, lastLines(string(out)))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, cleanup, fmt.Errorf("find a free port: %w", err)
	}
	s.Addr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.prog = filepath.Join(bin, "postgres")
	s.args = []string{"-D", data, "-p", port,
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir,
		// A scratch server: durability is not what is tested.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=40"}
	s.cred = cred
	stop = s.stop
	if err := s.launch(ctx); err != nil {
		return nil, cleanup, err
	}
	return s, cleanup, nil
}

// launch starts the server process and waits until it accepts the
// password.
func (s *Server) launch(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the server has its own copy
	cmd := exec.Command(s.prog, s.args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("postgres on %s did not come up: %v: %s", s.Addr, err, s.lastLog())
	}
	return nil
}

// Restart stops the server as `pg_ctl restart` does by default (fast:
// sessions are ended, transactions rolled back) and starts it again on
// the same port, returning once it accepts connections.
func (s *Server) Restart(ctx context.Context) error {
	s.stop()
	return s.launch(ctx)
}

// waitReady connects with the password until the server accepts.
func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, s.AdminURL())
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.done:
			return errors.New("postgres exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

// stop shuts the server down fast (SIGINT), by force after 10 seconds.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
	}
}

// binDir finds the folder of initdb and postgres.
func binDir() (string, error) {
	if d := os.Getenv("MBACKUP_TEST_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no initdb found: install PostgreSQL's server package or set MBACKUP_TEST_PG_BIN to the folder of initdb and postgres")
}

// version is the major version in a path /usr/lib/postgresql/15/bin.
func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// credential returns who runs the server: the postgres user when we are
// root, else ourselves (nil). The folder is handed to that user.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs a postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return cred, chown(cred, dir)
}

func chown(cred *syscall.Credential, path string) error {
	if cred == nil {
		return nil
	}
	return os.Chown(path, int(cred.Uid), int(cred.Gid))
}

// lastLog returns the last lines the server wrote.
func (s *Server) lastLog() string {
	data, _ := os.ReadFile(s.log)
	return lastLines(string(data))
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " / ")
}
