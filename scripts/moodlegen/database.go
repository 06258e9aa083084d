package moodlegen

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"
)

// DatabaseURL returns adminURL (a postgres:// URL) pointing at database
// dbName instead, keeping host, user and query parameters.
func DatabaseURL(adminURL, dbName string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", fmt.Errorf("database URL %q: want postgres://USER@HOST:PORT/DB", redactURL(adminURL))
	}
	u.Path = "/" + dbName
	u.RawPath = ""
	return u.String(), nil
}

// redactURL hides a password in a connection URL for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}

func checkDBName(adminURL, dbName string) error {
	if dbName == "" || len(dbName) > 63 {
		return fmt.Errorf("database name %q: must be 1 to 63 bytes", dbName)
	}
	u, err := url.Parse(adminURL)
	if err == nil && strings.TrimPrefix(u.Path, "/") == dbName {
		return fmt.Errorf("database name %q: refusing to drop the database the admin URL connects to", dbName)
	}
	if dbName == "postgres" || strings.HasPrefix(dbName, "template") {
		return fmt.Errorf("database name %q: refusing to replace a system database", dbName)
	}
	return nil
}

// DropDatabase drops dbName if it exists, terminating its sessions.
func DropDatabase(ctx context.Context, adminURL, dbName string) error {
	if err := checkDBName(adminURL, dbName); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redactURL(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{dbName}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", dbName, err)
	}
	return nil
}

// CreateDatabase (re)creates database dbName on the server of adminURL and
// fills it with the Moodle-like tables of spec. An existing database of that
// name is dropped first, its sessions terminated.
func CreateDatabase(ctx context.Context, adminURL, dbName string, spec Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	spec = spec.normalized()
	if err := DropDatabase(ctx, adminURL, dbName); err != nil {
		return err
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redactURL(adminURL), err)
	}
	// C collation keeps the database independent of the server's locales.
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbName}.Sanitize()+
		" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
	admin.Close(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("create database %s: %w", dbName, err)
	}
	dbURL, err := DatabaseURL(adminURL, dbName)
	if err != nil {
		return err
	}
	if err := fillDatabase(ctx, dbURL, spec); err != nil {
		return fmt.Errorf("fill database %s: %w", dbName, err)
	}
	return nil
}

// fillDatabase loads the log table on one connection while a second one
// loads everything else, so the two biggest costs (log rows and file hashes)
// overlap.
func fillDatabase(ctx context.Context, dbURL string, s Spec) error {
	main, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer main.Close(context.WithoutCancel(ctx))
	if _, err := main.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	users, userTable := buildUsers(s)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		conn, err := pgx.Connect(gctx, dbURL)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		defer conn.Close(context.WithoutCancel(gctx))
		end := s.Epoch.Unix()
		gen := newLogGen(s, key(s.Seed, "log").rand(), users, 1, end-365*86400, end, s.LogRows)
		n := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if n == s.LogRows {
				return nil, nil
			}
			n++
			return gen.next(), nil
		})
		if _, err := conn.CopyFrom(gctx, pgx.Identifier{"mdl_logstore_standard_log"}, logColumns, src); err != nil {
			return fmt.Errorf("copy mdl_logstore_standard_log: %w", err)
		}
		if _, err := conn.Exec(gctx, logIndexesSQL); err != nil {
			return fmt.Errorf("index mdl_logstore_standard_log: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		cat := buildCatalog(s)
		hctx, cancel := context.WithCancel(gctx)
		defer cancel()
		hashed := make(chan error, 1)
		go func() { hashed <- cat.hashContents(hctx) }()
		services, tokens, keys := buildWebServices(s, users)
		tables := []table{buildConfig(s), buildConfigPlugins(s), userTable, buildCourses(s),
			buildTaskScheduled(s), buildTaskAdhoc(s), buildSessions(s, users), services, tokens, keys}
		tables = append(tables, buildSmallTables(s)...)
		for _, t := range tables {
			if _, err := main.CopyFrom(gctx, pgx.Identifier{t.name}, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
				cancel()
				<-hashed
				return fmt.Errorf("copy %s: %w", t.name, err)
			}
		}
		if err := <-hashed; err != nil {
			return err
		}
		return copyFiles(gctx, main, cat.rows)
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if err := resetSequences(ctx, main); err != nil {
		return err
	}
	if _, err := main.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

func copyFiles(ctx context.Context, conn copier, rows []fileRow) error {
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(rows) {
			return nil, nil
		}
		i++
		return rows[i-1].values(), nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"mdl_files"}, fileColumns, src); err != nil {
		return fmt.Errorf("copy mdl_files: %w", err)
	}
	return nil
}

// copier and execer are satisfied by *pgx.Conn and pgx.Tx.
type copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// resetSequences moves every id sequence past the loaded ids, as a restore
// of a real Moodle dump would leave them.
func resetSequences(ctx context.Context, conn execer) error {
	var b strings.Builder
	for _, t := range generatedTables {
		fmt.Fprintf(&b, "SELECT setval(pg_get_serial_sequence('%s', 'id'), coalesce(max(id), 0) + 1, false) FROM %s;\n", t, t)
	}
	if _, err := conn.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("reset sequences: %w", err)
	}
	return nil
}

// DatabaseStats summarises a database for humans and the CLI.
type DatabaseStats struct {
	Tables  int              // ordinary tables outside the system schemas
	Rows    int64            // rows over all tables
	Bytes   int64            // pg_database_size
	ByTable map[string]int64 // rows per table
}

// InspectDatabase counts the rows of every table of the database at dbURL.
func InspectDatabase(ctx context.Context, dbURL string) (DatabaseStats, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return DatabaseStats{}, fmt.Errorf("connect to %s: %w", redactURL(dbURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tables, err := listTables(ctx, conn)
	if err != nil {
		return DatabaseStats{}, err
	}
	st := DatabaseStats{Tables: len(tables), ByTable: make(map[string]int64, len(tables))}
	for _, t := range tables {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t.ident()).Scan(&n); err != nil {
			return DatabaseStats{}, fmt.Errorf("count rows of %s: %w", t, err)
		}
		st.ByTable[t.String()] = n
		st.Rows += n
	}
	if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&st.Bytes); err != nil {
		return DatabaseStats{}, fmt.Errorf("database size: %w", err)
	}
	return st, nil
}

// tableName is a schema-qualified table.
type tableName struct{ schema, name string }

func (t tableName) ident() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// String returns the bare name for tables in public, schema.name otherwise.
func (t tableName) String() string {
	if t.schema == "public" {
		return t.name
	}
	return t.schema + "." + t.name
}

func listTables(ctx context.Context, conn *pgx.Conn) ([]tableName, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tableName, error) {
		var t tableName
		err := row.Scan(&t.schema, &t.name)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return out, nil
}
