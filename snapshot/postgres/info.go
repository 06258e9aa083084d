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
func Tables(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]string, error) {
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

// RowCounts counts the rows of every user table, exactly. Run in the dump's
// snapshot, the counts describe exactly the dumped data, so a restore can
// be verified table by table.
func RowCounts(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}) (map[string]int64, error) {
	tables, err := Tables(ctx, q)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(tables))
	for _, t := range tables {
		schema, name, _ := strings.Cut(t, ".")
		var n int64
		if err := q.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, name}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", t, err)
		}
		counts[t] = n
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
