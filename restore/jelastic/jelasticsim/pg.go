package jelasticsim

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL error codes the simulator reacts to.
const (
	pgObjectInUse         = "55006" // source database is being accessed by other users
	pgDuplicateDatabase   = "42P04"
	pgInvalidCatalogName  = "3D000" // database does not exist
	cloneBusyRetries      = 20
	cloneBusyRetryBackoff = 250 * time.Millisecond
)

// dbName is an environment's database name.
func dbName(env string) string { return strings.ReplaceAll(env, "-", "_") }

func (s *Server) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pg.Copy())
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w", s.pg.Host, s.pg.Port, err)
	}
	return conn, nil
}

// CheckPG verifies that the PostgreSQL server is reachable with the
// configured role.
func (s *Server) CheckPG(ctx context.Context) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

// cloneDatabase creates dst as a copy of src. Other sessions on src are
// terminated first (CREATE DATABASE ... TEMPLATE needs src idle), which is
// the simulator's version of the platform freezing the clone source; a
// session that reconnects in between makes it retry briefly.
func (s *Server) cloneDatabase(ctx context.Context, src, dst string) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var owner string
	err = conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, src).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("source database %s does not exist", src)
	}
	if err != nil {
		return fmt.Errorf("look up database %s: %w", src, err)
	}
	sql := "CREATE DATABASE " + quoteIdent(dst) + " TEMPLATE " + quoteIdent(src) + " OWNER " + quoteIdent(owner)
	for attempt := 1; ; attempt++ {
		if _, err := conn.Exec(ctx,
			`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, src); err != nil {
			return fmt.Errorf("terminate sessions on %s: %w", src, err)
		}
		_, err = conn.Exec(ctx, sql)
		if err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			switch pgErr.Code {
			case pgDuplicateDatabase:
				return errDatabaseExists
			case pgInvalidCatalogName:
				return fmt.Errorf("source database %s does not exist", src)
			case pgObjectInUse:
				if attempt < cloneBusyRetries {
					if err := sleepCtx(ctx, cloneBusyRetryBackoff); err != nil {
						return err
					}
					continue
				}
			}
		}
		return fmt.Errorf("create database %s from %s: %w", dst, src, err)
	}
}

var errDatabaseExists = errors.New("database already exists")

// dropDatabase drops a database if it exists, disconnecting its sessions.
func (s *Server) dropDatabase(ctx context.Context, name string) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// pgEnviron derives the libpq variables that let commands run by exec reach
// the same server as the simulator. sslmode is taken from a URL's query;
// pgx does not keep it.
func pgEnviron(raw string, c *pgx.ConnConfig) []string {
	env := []string{
		"PGHOST=" + c.Host,
		"PGPORT=" + strconv.Itoa(int(c.Port)),
		"PGUSER=" + c.User,
	}
	if c.Password != "" {
		env = append(env, "PGPASSWORD="+c.Password)
	}
	if u, err := url.Parse(raw); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if mode := u.Query().Get("sslmode"); mode != "" {
			env = append(env, "PGSSLMODE="+mode)
		}
	}
	return env
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
