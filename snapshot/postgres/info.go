package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ServerInfo describes a database at backup time.
type ServerInfo struct {
	ServerVersion string `json:"server_version"`
	Database      string `json:"database"`
	SizeBytes     int64  `json:"size_bytes"`
	Encoding      string `json:"encoding"`
}

// Info reads server facts in tx.
func Info(ctx context.Context, tx pgx.Tx) (ServerInfo, error) {
	var si ServerInfo
	err := tx.QueryRow(ctx, `SELECT current_setting('server_version'), current_database(),
		pg_database_size(current_database()), pg_encoding_to_char(encoding)
		FROM pg_database WHERE datname = current_database()`).Scan(&si.ServerVersion, &si.Database, &si.SizeBytes, &si.Encoding)
	if err != nil {
		return si, fmt.Errorf("read server info: %w", err)
	}
	return si, nil
}

// Tables lists the user tables as schema-qualified names, sorted.
func Tables(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var out []string
	for rows.Next() {
		var schema, name string
		if err := rows.Scan(&schema, &name); err != nil {
			return nil, err
		}
		out = append(out, schema+"."+name)
	}
	return out, rows.Err()
}

// Querier runs queries: a connection or a transaction.
type Querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}

// RowCounts counts the rows of every user table, exactly. Run in the dump's
// snapshot, the counts describe exactly the dumped data, so a restore can
// be verified table by table.
func RowCounts(ctx context.Context, q Querier) (map[string]int64, error) {
	return rowCounts(ctx, q, nil)
}

// rowCounts is RowCounts taking the counts it is given for known tables
// (those read from the dump) and counting only the others: partitioned
// tables, whose rows are their partitions', and tables whose data pg_dump
// leaves out. The counts go to the server in one batch, not one round trip
// per table (a Moodle database has about 450 tables).
func rowCounts(ctx context.Context, q Querier, known map[string]int64) (map[string]int64, error) {
	tables, err := Tables(ctx, q)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(tables))
	var (
		batch   pgx.Batch
		counted []string
	)
	for _, t := range tables {
		if n, ok := known[t]; ok {
			counts[t] = n
			continue
		}
		schema, name, _ := strings.Cut(t, ".")
		batch.Queue("SELECT count(*) FROM " + pgx.Identifier{schema, name}.Sanitize())
		counted = append(counted, t)
	}
	if len(counted) == 0 {
		return counts, nil
	}
	br := q.SendBatch(ctx, &batch)
	for _, t := range counted {
		var n int64
		if err := br.QueryRow().Scan(&n); err != nil {
			br.Close()
			return nil, fmt.Errorf("count rows of %s: %w", t, err)
		}
		counts[t] = n
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	return counts, nil
}

// MoodleInfo is what the database says about the Moodle installation.
type MoodleInfo struct {
	Version     string `json:"version,omitempty"`
	Release     string `json:"release,omitempty"`
	Maintenance string `json:"maintenance_enabled,omitempty"`
}

// Moodle reads version, release and maintenance state from the config
// table (prefix "mdl_" unless given), if there is one.
func Moodle(ctx context.Context, tx pgx.Tx, prefix string) (*MoodleInfo, error) {
	if prefix == "" {
		prefix = "mdl_"
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, prefix+"config").Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for %sconfig: %w", prefix, err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := tx.Query(ctx, "SELECT name, value FROM "+Ident(prefix+"config")+" WHERE name IN ('version', 'release', 'maintenance_enabled')")
	if err != nil {
		return nil, fmt.Errorf("read %sconfig: %w", prefix, err)
	}
	mi := &MoodleInfo{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, err
		}
		switch name {
		case "version":
			mi.Version = value
		case "release":
			mi.Release = value
		case "maintenance_enabled":
			mi.Maintenance = value
		}
	}
	return mi, rows.Err()
}
