package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/mbackup/mbackup/engine/backend/s3"
	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
	"github.com/mbackup/mbackup/scripts/moodlegen"
)

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------- S3

// s3Server is a versitygw process serving a folder over S3 on loopback.
type s3Server struct{ *s3test.Process }

// startS3 starts versitygw on a free loopback port with fresh credentials.
func startS3(ctx context.Context, dir string) (*s3Server, error) {
	p, err := s3test.Launch(ctx, filepath.Join(dir, "s3"))
	if err != nil {
		return nil, fmt.Errorf("%w (or drop s3 from --backends)", err)
	}
	return &s3Server{p}, nil
}

// env gives a tool the server's credentials the way every S3 client reads
// them.
func (s *s3Server) env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_DEFAULT_REGION=us-east-1"}
}

func (s *s3Server) createBucket(ctx context.Context, name string) error {
	be, err := s3.Open(s3.Config{Endpoint: s.Endpoint, Bucket: name, AccessKey: s.AccessKey, SecretKey: s.SecretKey})
	if err != nil {
		return err
	}
	defer be.Close()
	if err := be.CreateBucket(ctx); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

func (s *s3Server) stop() {
	if s != nil {
		s.Stop()
	}
}

// ---------------------------------------------------------------- data

// dataset is the generated environment.
type dataset struct {
	spec      moodlegen.Spec
	adminURL  string
	db        string
	in        inputs
	files     int64 // regular files in moodledata (all folders)
	bytes     int64
	junkFiles int64
	junkBytes int64
	dumpBytes int64 // pg_dump -Fc -Z0 output, measured after generation and after mutate
	day1Dump  int64 // dumpBytes before mutate
	dbRows    int64
	genTime   time.Duration
	mutation  moodlegen.MutationStats
}

// generate creates the database and moodledata of spec.
func generate(ctx context.Context, adminURL, db, envDir string, spec moodlegen.Spec, password string) (*dataset, error) {
	dbURL, err := moodlegen.DatabaseURL(adminURL, db)
	if err != nil {
		return nil, err
	}
	ds := &dataset{spec: spec, adminURL: adminURL, db: db, in: inputs{
		envDir: envDir, moodledata: filepath.Join(envDir, "moodledata"), dbURL: dbURL,
		exclude: append(moodlegen.JunkDirs(), "climaintenance.html"), password: password,
	}}
	if err := os.RemoveAll(ds.in.moodledata); err != nil {
		return nil, err
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return moodlegen.CreateDatabase(gctx, adminURL, db, spec) })
	g.Go(func() error {
		st, err := moodlegen.CreateMoodledataContext(gctx, ds.in.moodledata, spec)
		ds.files, ds.bytes, ds.junkFiles, ds.junkBytes = st.Files, st.Bytes, st.JunkFiles, st.JunkBytes
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("generate environment: %w", err)
	}
	ds.genTime = time.Since(start)
	st, err := moodlegen.InspectDatabase(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	ds.dbRows = st.Rows
	if err := ds.settle(ctx, true); err != nil {
		return nil, err
	}
	// One dump up front: it measures the dump and warms PostgreSQL's cache,
	// so the first tool measured does not pay for a cold cache alone.
	if ds.dumpBytes, err = ds.measureDump(ctx, ""); err != nil {
		return nil, err
	}
	ds.day1Dump = ds.dumpBytes
	return ds, nil
}

// settle does now what autovacuum and the checkpointer would otherwise do
// in the middle of a measurement, to the tool that happens to run then:
// vacuum (freezing after the bulk load) and flush dirty pages.
func (ds *dataset) settle(ctx context.Context, freeze bool) error {
	conn, err := pgx.Connect(ctx, ds.in.dbURL)
	if err != nil {
		return fmt.Errorf("settle %s: %w", ds.db, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	vacuum := "VACUUM (ANALYZE)"
	if freeze {
		vacuum = "VACUUM (FREEZE, ANALYZE)"
	}
	if _, err := conn.Exec(ctx, vacuum); err != nil {
		return fmt.Errorf("settle %s: %s: %w", ds.db, vacuum, err)
	}
	// CHECKPOINT needs a superuser (or pg_checkpoint); without it the
	// checkpointer's timing is left to chance.
	_, _ = conn.Exec(ctx, "CHECKPOINT")
	return nil
}

// measureDump runs the dump every tool reads and counts its bytes; with
// keep set, it also writes the dump to that file (written out before the
// next measurement like everything else, see round.coldStart).
func (ds *dataset) measureDump(ctx context.Context, keep string) (int64, error) {
	c := ds.in.pgDump()
	cmd := exec.CommandContext(ctx, c.args[0], c.args[1:]...)
	cw := &countWriter{}
	cmd.Stdout = cw
	var f *os.File
	if keep != "" {
		var err error
		if f, err = os.Create(keep); err != nil {
			return 0, err
		}
		defer f.Close()
		cmd.Stdout = io.MultiWriter(f, cw)
	}
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("pg_dump of %s: %v: %s", ds.db, err, strings.TrimSpace(stderr.String()))
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return 0, fmt.Errorf("write %s: %w", keep, err)
		}
	}
	return cw.n, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// mutate simulates one day of use; with keepDump set, the day's dump is
// also written to that file.
func (ds *dataset) mutate(ctx context.Context, seed uint64, keepDump string) error {
	st, err := moodlegen.Mutate(ctx, ds.adminURL, ds.db, ds.in.moodledata, ds.spec, moodlegen.Mutation{Seed: seed})
	if err != nil {
		return fmt.Errorf("mutate environment: %w", err)
	}
	ds.mutation = st
	if err := ds.settle(ctx, false); err != nil {
		return err
	}
	n, err := ds.measureDump(ctx, keepDump)
	if err != nil {
		return err
	}
	ds.dumpBytes = n
	return nil
}

// drop removes the database.
func (ds *dataset) drop(ctx context.Context) error {
	return moodlegen.DropDatabase(ctx, ds.adminURL, ds.db)
}

// digest fingerprints the moodledata as every restore must reproduce it.
func (ds *dataset) digest() (map[string]string, error) {
	return moodlegen.TreeDigest(ds.in.moodledata, ds.in.exclude)
}

// verifyRestore compares a restored moodledata with want and checks that
// the restored database is a complete dump.
func verifyRestore(want map[string]string, out restored) error {
	got, err := moodlegen.TreeDigest(out.moodledata, nil)
	if err != nil {
		return err
	}
	if diff := moodlegen.DiffTrees(want, got); len(diff) > 0 {
		if len(diff) > 5 {
			diff = append(diff[:5], fmt.Sprintf("... %d more", len(diff)-5))
		}
		return fmt.Errorf("restored moodledata differs from the source:\n      %s", strings.Join(diff, "\n      "))
	}
	return checkDump(out.dump)
}

// checkDump recognises a complete plain SQL dump (pg_dump's closing
// comment) or a custom-format archive (its magic).
func checkDump(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("restored database: %w", err)
	}
	defer f.Close()
	head := make([]byte, 5)
	if _, err := io.ReadFull(f, head); err != nil {
		return fmt.Errorf("restored database %s: %w", path, err)
	}
	if string(head) == "PGDMP" {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	tail := make([]byte, min(fi.Size(), 4096))
	if _, err := f.ReadAt(tail, fi.Size()-int64(len(tail))); err != nil {
		return fmt.Errorf("restored database %s: %w", path, err)
	}
	if !bytes.Contains(tail, []byte("PostgreSQL database dump complete")) {
		return fmt.Errorf("restored database %s is not a complete SQL dump (no closing comment)", path)
	}
	return nil
}

// checkPostgres verifies that the admin URL connects, so that a missing
// server is one clear line instead of a generator error.
func checkPostgres(ctx context.Context, adminURL string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL at %s is not reachable (%v): start it, or pass --pg URL", redact(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", err
	}
	return v, nil
}

// redact hides a password in a URL.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return u[:i+3] + rest[:c] + ":***" + rest[at:]
			}
		}
	}
	return u
}

// loadAverage returns the one-minute load average (0 when unknown).
func loadAverage() float64 {
	var l float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		_, _ = fmt.Sscanf(string(b), "%f", &l)
	}
	return l
}

// machine describes the host for the report header.
func machine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%s, %d CPUs%s", cpu, numCPU(), mem)
}
