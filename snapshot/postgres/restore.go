package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"
)

// Admin returns the maintenance database ("postgres") on d's server, with
// d's credentials: databases are created, renamed and dropped from there,
// since a database cannot be renamed while connected to it.
func (d DB) Admin() DB { return d.WithName("postgres") }

// Facts describes an existing database.
type Facts struct {
	Exists   bool
	Owner    string
	Encoding string
	Collate  string
	Ctype    string
}

// Facts reads the owner and locale of database name (connecting to d's
// maintenance database).
func (d DB) Facts(ctx context.Context, name string) (Facts, error) {
	conn, err := d.Admin().Connect(ctx)
	if err != nil {
		return Facts{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var f Facts
	err = conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype
		FROM pg_database WHERE datname = $1`, name).Scan(&f.Owner, &f.Encoding, &f.Collate, &f.Ctype)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read facts of database %s: %w", name, err)
	}
	f.Exists = true
	return f, nil
}

// CurrentUser returns the role d connects as and whether it is a superuser.
func (d DB) CurrentUser(ctx context.Context) (string, bool, error) {
	conn, err := d.Admin().Connect(ctx)
	if err != nil {
		return "", false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var user string
	var super bool
	err = conn.QueryRow(ctx, `SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super)
	return user, super, err
}

// Create creates an empty database name from template0, owned by owner
// (empty: the connecting role), with the given encoding and locale when
// set. Moodle needs UTF8, so that is the default.
func (d DB) Create(ctx context.Context, name string, f Facts) error {
	if !ValidName(name) {
		return fmt.Errorf("create database %q: not a plain database name", name)
	}
	conn, err := d.Admin().Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	q := "CREATE DATABASE " + Ident(name) + " TEMPLATE template0"
	if f.Owner != "" {
		q += " OWNER " + Ident(f.Owner)
	}
	enc := f.Encoding
	if enc == "" {
		enc = "UTF8"
	}
	q += " ENCODING " + quote(enc)
	if f.Collate != "" {
		q += " LC_COLLATE " + quote(f.Collate) + " LC_CTYPE " + quote(f.Ctype)
	}
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func quote(s string) string {
	b := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			b = append(b, '\'')
		}
		b = append(b, s[i])
	}
	return string(append(b, '\''))
}

// Drop removes database name if it exists, ending its sessions.
func (d DB) Drop(ctx context.Context, name string) error {
	conn, err := d.Admin().Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+Ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// Swap replaces database target by replacement in one transaction: target
// is renamed to keepAs and replacement to target, after ending every other
// session on both. When target does not exist, replacement is only
// renamed. Sessions that reconnect at the wrong moment make the rename
// fail; Swap then ends them again and retries a few times.
func (d DB) Swap(ctx context.Context, target, replacement, keepAs string) error {
	conn, err := d.Admin().Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", target).Scan(&exists); err != nil {
		return fmt.Errorf("swap databases: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = ANY($1) AND pid <> pg_backend_pid()`, []string{target, replacement}); err != nil {
			return fmt.Errorf("end sessions on %s: %w", target, err)
		}
		lastErr = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if exists {
				if _, err := tx.Exec(ctx, "ALTER DATABASE "+Ident(target)+" RENAME TO "+Ident(keepAs)); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, "ALTER DATABASE "+Ident(replacement)+" RENAME TO "+Ident(target))
			return err
		})
		if lastErr == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(lastErr, &pgErr) || pgErr.Code != "55006" { // object_in_use
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("swap database %s with %s: %w", target, replacement, lastErr)
}

// Analyze updates the planner statistics of d, as pg_restore's
// documentation advises after a restore.
func (d DB) Analyze(ctx context.Context) error {
	conn, err := d.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze %s: %w", d, err)
	}
	return nil
}

// RestoreOptions tune pg_restore.
type RestoreOptions struct {
	// PgRestore is the program (default "pg_restore").
	PgRestore string
	// Jobs > 1 restores in parallel; it needs File (pg_restore cannot run
	// parallel jobs on a pipe).
	Jobs int
	// File is the archive on disk; when empty the archive is read from
	// Input.
	File  string
	Input io.Reader
	// Role is SET ROLE'd before restoring, so objects belong to it.
	Role string
}

// Restore loads a custom-format archive into d with --no-owner and
// --no-privileges, stopping at the first error.
func (d DB) Restore(ctx context.Context, o RestoreOptions) error {
	prog := o.PgRestore
	if prog == "" {
		prog = "pg_restore"
	}
	args := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--no-password"}
	if o.Role != "" {
		args = append(args, "--role="+o.Role)
	}
	if o.Jobs > 1 && o.File != "" {
		args = append(args, "--jobs="+strconv.Itoa(o.Jobs))
	}
	if o.File != "" {
		args = append(args, o.File)
	}
	cmd := d.Cmd(ctx, prog, args...)
	var in io.Reader
	if o.File == "" {
		in = o.Input
	}
	return runTool(ctx, cmd, in, prog, d.String())
}

// ToSQL converts a custom-format archive read from in into a plain SQL
// script written to out, loadable with psql into an empty database.
func ToSQL(ctx context.Context, pgRestore string, in io.Reader, out io.Writer) error {
	if pgRestore == "" {
		pgRestore = "pg_restore"
	}
	cmd := exec.CommandContext(ctx, pgRestore, "--no-owner", "--no-privileges", "--file=-")
	cmd.Stdout = out
	return runTool(ctx, cmd, in, pgRestore, "SQL script")
}

// pipeSize is the pipe between mbackup and pg_dump or pg_restore. They
// write and read 4 KiB at a time; with Linux's default 64 KiB pipe the two
// ends wake each other every few calls, which cost a restore of a 250 MB
// dump about 0.2 s (scripts/bench). 1 MiB is the most an unprivileged
// process may ask for by default (/proc/sys/fs/pipe-max-size).
const pipeSize = 1 << 20

// pipe returns a pipe of pipeSize (or the default size where that is
// refused: it still works, only slower).
func pipe() (r, w *os.File, err error) {
	if r, w, err = os.Pipe(); err == nil {
		_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	}
	return r, w, err
}

// runTool runs cmd, which was made with ctx, feeding it in (when not nil)
// on its standard input. When ctx ends first, exec kills the tool and the
// error says why, not that it was killed. When in fails, that is the
// cause: the tool only saw its input end early.
func runTool(ctx context.Context, cmd *exec.Cmd, in io.Reader, prog, what string) error {
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	var fed chan error
	if in != nil {
		pr, pw, err := pipe()
		if err != nil {
			return fmt.Errorf("%s into %s: %w", prog, what, err)
		}
		cmd.Stdin = pr
		if err := cmd.Start(); err != nil {
			pr.Close()
			pw.Close()
			return fmt.Errorf("%s into %s: %w", prog, what, err)
		}
		pr.Close() // the tool has its copy; its exit must break our writes
		fed = make(chan error, 1)
		go func() {
			_, err := io.Copy(pw, in)
			pw.Close()
			fed <- err
		}()
	} else if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s into %s: %w", prog, what, err)
	}
	err := cmd.Wait()
	if fed != nil {
		// A tool that stops reading (it failed, or it was killed) breaks
		// the pipe; any other error is the input's.
		if ferr := <-fed; ferr != nil && !errors.Is(ferr, syscall.EPIPE) && ctx.Err() == nil {
			return fmt.Errorf("%s into %s: input: %w", prog, what, ferr)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s into %s: %w", prog, what, context.Cause(ctx))
		}
		return fmt.Errorf("%s into %s failed (%v): %s", prog, what, err, stderr.summary())
	}
	return nil
}

// DatabasesLike lists the databases on d's server whose names start with
// prefix.
func (d DB) DatabasesLike(ctx context.Context, prefix string) ([]string, error) {
	conn, err := d.Admin().Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1", prefix)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
