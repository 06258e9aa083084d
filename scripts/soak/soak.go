package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/fault"
	"github.com/mbackup/mbackup/engine/backend/faultproxy"
	"github.com/mbackup/mbackup/engine/backend/retry"
	"github.com/mbackup/mbackup/engine/backend/s3"
	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
	"github.com/mbackup/mbackup/engine/blob"
	"github.com/mbackup/mbackup/engine/checker"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/engine/prune"
	"github.com/mbackup/mbackup/restore"
	"github.com/mbackup/mbackup/scripts/moodlegen"
	"github.com/mbackup/mbackup/snapshot"
	"github.com/mbackup/mbackup/snapshot/postgres"
)

// Options size a soak run.
type Options struct {
	Backups, Envs, PruneEvery, Keep int
	FaultRate, OutageRate           float64
	Spec                            string
	Seed                            uint64
	Out, PG                         string
	Verbose                         bool
	// Shared runs backups and prunes through one repository handle, as
	// `mbackup serve` does; otherwise prune has its own, as another
	// process (`mbackup prune` from cron) would.
	Shared bool
}

// Result is what a soak run did.
type Result struct {
	Options  Options
	Duration time.Duration

	BackupsOK, BackupsFailed int
	FailedReasons            map[string]int
	Prunes, PrunesFailed     int
	PruneFailures            []string
	// LeftoverLocks are lock files still there at the end, although
	// every session ended; FinalPending are marks the last prune could
	// not sweep because of them.
	LeftoverLocks  []string
	FinalPending   int
	Forgotten      int
	PackBytesFreed int64

	Requests       int            // S3 requests through the proxy
	ProxyFaults    map[string]int // by kind
	BackendFaults  int            // failed or torn writes, failed reads and listings
	Outages        int
	Retries        int64 // storage operations retried
	VerifyRetried  int   // verifications repeated without faults after a fault outlasted the retries
	Verified       int   // snapshot restores compared with the recorded state
	BytesVerified  int64
	BytesLost      int64
	LostSnapshots  []string
	CheckOK        bool
	CheckSummary   string
	FinalSnapshots int
}

// FaultsInjected is the total of injected faults of every kind.
func (r *Result) FaultsInjected() int {
	n := r.BackendFaults + r.Outages
	for _, v := range r.ProxyFaults {
		n += v
	}
	return n
}

const password = "soak repository password"

var retryPolicy = retry.Policy{Attempts: 8, Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}

// env is one generated environment.
type env struct {
	name, dbName, dbURL, moodledata, configPHP string
	spec                                       moodlegen.Spec
}

// state is what a snapshot of an environment must give back.
type state struct {
	db        moodlegen.Digest
	files     map[string]string
	configPHP []byte
}

// committed is a snapshot the soak made.
type committed struct {
	env   *env
	want  state
	bytes int64
}

// stack is one process's view of the repository: S3 through the proxy,
// the fault backend, and the retry backend on top.
type stack struct {
	faults *fault.Backend
	retry  *retry.Backend
}

type soak struct {
	o      Options
	out    io.Writer
	admin  string
	dir    string
	rng    *rand.Rand
	proxy  *faultproxy.Proxy
	stacks []*stack
	repo   *engine.Repository // the writer's handle
	pruneR *engine.Repository // prune's handle: repo with Shared, else as another process would hold
	envs   []*env
	res    *Result

	mu        sync.Mutex
	made      map[blob.ID]*committed
	forgotten blob.Set
	scratch   int
}

// Run performs a soak run and reports it; the error is for setup problems
// and interruptions, losses are in the result.
func Run(ctx context.Context, o Options, out io.Writer) (*Result, error) {
	start := time.Now()
	s := &soak{o: o, out: out, rng: rand.New(rand.NewPCG(o.Seed, 0x50a4)), made: map[blob.ID]*committed{}, forgotten: blob.NewSet(),
		res: &Result{Options: o, FailedReasons: map[string]int{}, ProxyFaults: map[string]int{}}}
	s.admin = o.PG
	if s.admin == "" {
		s.admin = os.Getenv("MBACKUP_TEST_PG")
	}
	if s.admin == "" {
		s.admin = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	for _, tool := range []string{"pg_dump", "pg_restore", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: %s is not installed (apt-get install postgresql-client)", errUsage, tool)
		}
	}
	dir, err := os.MkdirTemp("", "mbackup-soak-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	defer os.RemoveAll(dir)
	fmt.Fprintf(out, "soak: %d backups of %d %s environments, prune every %d, fault rate %.3g, seed %d\n",
		o.Backups, o.Envs, o.Spec, o.PruneEvery, o.FaultRate, o.Seed)

	cleanup, err := s.setup(ctx)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	err = s.loop(ctx)
	s.res.Duration = time.Since(start)
	s.collect()
	return s.res, err
}

func (s *soak) logf(format string, args ...any) {
	if s.o.Verbose {
		fmt.Fprintf(s.out, format+"\n", args...)
	}
}

// setup starts (or finds) the S3 server, the proxy, the repository and the
// environments. The returned cleanup undoes all of it.
func (s *soak) setup(ctx context.Context) (func(), error) {
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	endpoint, ak, sk := os.Getenv("MBACKUP_TEST_S3_ENDPOINT"), os.Getenv("MBACKUP_TEST_S3_ACCESS_KEY"), os.Getenv("MBACKUP_TEST_S3_SECRET_KEY")
	if endpoint == "" {
		if _, err := s3test.Binary(); err != nil {
			return cleanup, fmt.Errorf("%w: %v, or set MBACKUP_TEST_S3_ENDPOINT", errUsage, err)
		}
		gw, err := s3test.Launch(ctx, filepath.Join(s.dir, "s3"))
		if err != nil {
			return cleanup, err
		}
		undo = append(undo, gw.Stop)
		endpoint, ak, sk = gw.Endpoint, gw.AccessKey, gw.SecretKey
	}
	bucket := fmt.Sprintf("mbackup-soak-%d", time.Now().UnixNano())
	direct := s3.Config{Endpoint: endpoint, Bucket: bucket, Prefix: "repo", AccessKey: ak, SecretKey: sk}
	be, err := s3.Open(direct)
	if err != nil {
		return cleanup, err
	}
	if err := be.CreateBucket(ctx); err != nil {
		return cleanup, fmt.Errorf("create bucket: %w", err)
	}
	p, err := faultproxy.New(endpoint, s.o.Seed)
	if err != nil {
		return cleanup, err
	}
	undo = append(undo, func() { p.Close() })
	s.proxy = p
	viaProxy := direct
	viaProxy.Endpoint = p.Addr()
	viaProxy.IdleTimeout = 2 * time.Second
	for i := 0; i < 2; i++ {
		sb, err := s3.Open(viaProxy)
		if err != nil {
			return cleanup, err
		}
		fb := fault.New(sb, s.o.Seed+uint64(i)+1)
		// Torn copies model a store without atomic writes; they are
		// written at once, not through the proxy, which delivers some
		// requests after the client gave up on them.
		fb.TearOn(be)
		s.stacks = append(s.stacks, &stack{faults: fb, retry: retry.New(fb, retryPolicy, nil)})
	}
	opts := engine.Options{KDF: crypto.KDFParams{N: 1 << 12, R: 8, P: 1}}
	if s.o.Verbose {
		opts.Logger = slog.New(slog.NewTextHandler(s.out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if s.repo, err = engine.Init(ctx, s.stacks[0].retry, password, engine.InitOptions{PackSize: 4 << 20}, opts); err != nil {
		return cleanup, fmt.Errorf("init repository: %w", err)
	}
	undo = append(undo, func() { s.repo.Close() })
	if s.o.Shared {
		s.pruneR = s.repo
	} else {
		if s.pruneR, err = engine.Open(ctx, s.stacks[1].retry, password, opts); err != nil {
			return cleanup, fmt.Errorf("open repository: %w", err)
		}
		undo = append(undo, func() { s.pruneR.Close() })
	}

	spec := moodlegen.Tiny()
	if s.o.Spec == "demo" {
		spec = moodlegen.Demo()
	}
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	undo = append(undo, func() { s.dropDatabases(fmt.Sprintf("soak_%s_", run)) })
	for i := 0; i < s.o.Envs; i++ {
		e := &env{name: fmt.Sprintf("soak-%d", i+1), dbName: fmt.Sprintf("soak_%s_%d", run, i+1), spec: spec}
		e.spec.Seed = uint64(i + 1)
		root := filepath.Join(s.dir, e.name)
		e.moodledata, e.configPHP = filepath.Join(root, "moodledata"), filepath.Join(root, "www", "config.php")
		if err := moodlegen.CreateDatabase(ctx, s.admin, e.dbName, e.spec); err != nil {
			return cleanup, fmt.Errorf("create database for %s (is PostgreSQL running at %s?): %w", e.name, postgres.Redact(s.admin), err)
		}
		if e.dbURL, err = moodlegen.DatabaseURL(s.admin, e.dbName); err != nil {
			return cleanup, err
		}
		if _, err := moodlegen.CreateMoodledata(e.moodledata, e.spec); err != nil {
			return cleanup, err
		}
		cp, err := moodlegen.ConfigFromURL(s.admin, e.dbName, e.moodledata)
		if err != nil {
			return cleanup, err
		}
		if err := os.MkdirAll(filepath.Dir(e.configPHP), 0o755); err != nil {
			return cleanup, err
		}
		if err := moodlegen.WriteConfigPHP(e.configPHP, cp); err != nil {
			return cleanup, err
		}
		s.envs = append(s.envs, e)
	}
	return cleanup, nil
}

// faultsOn installs the random faults; faultsOff lifts them all.
func (s *soak) faultsOn() {
	p := s.o.FaultRate
	if p == 0 {
		return
	}
	for _, r := range []faultproxy.Rule{
		{Kind: faultproxy.Status, Status: 503, Probability: p},
		{Kind: faultproxy.Status, Status: 500, Probability: p / 2},
		{Kind: faultproxy.Reset, After: 300, Probability: p / 2},
		{Kind: faultproxy.Reset, After: 64 << 10, Probability: p / 2},
		{Kind: faultproxy.Stall, After: 500, Duration: 150 * time.Millisecond, Probability: p / 2},
		{Kind: faultproxy.Stall, Duration: 3 * time.Second, Probability: p / 10}, // beyond the idle timeout
		{Kind: faultproxy.Delay, Duration: time.Millisecond},
	} {
		s.proxy.Add(r)
	}
	for _, st := range s.stacks {
		st.faults.Add(fault.Rule{Op: fault.Save, Probability: p / 4, Torn: true})
		st.faults.Add(fault.Rule{Op: fault.Load, Probability: p / 4})
		st.faults.Add(fault.Rule{Op: fault.List, Probability: p / 8})
		st.faults.Add(fault.Rule{Op: fault.Stat, Probability: p / 8})
	}
}

func (s *soak) faultsOff() {
	s.proxy.Clear()
	for _, st := range s.stacks {
		st.faults.Clear()
	}
}

// outage takes the S3 server away for a moment at a random time.
func (s *soak) outage(ctx context.Context, wg *sync.WaitGroup) {
	s.mu.Lock()
	after := time.Duration(s.rng.Int64N(int64(800 * time.Millisecond)))
	length := 200*time.Millisecond + time.Duration(s.rng.Int64N(int64(500*time.Millisecond)))
	s.res.Outages++
	s.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			return
		case <-time.After(after):
		}
		s.proxy.Down(true)
		select {
		case <-ctx.Done():
		case <-time.After(length):
		}
		s.proxy.Down(false)
	}()
}

func (s *soak) loop(ctx context.Context) error {
	base := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	type pruneResult struct {
		forgotten []blob.ID
		st        *prune.Stats
		err       error
	}
	var pruning chan pruneResult
	finishPrune := func(r pruneResult) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, id := range r.forgotten {
			s.forgotten.Insert(id)
		}
		s.res.Forgotten += len(r.forgotten)
		if r.err != nil {
			s.res.PrunesFailed++
			s.res.PruneFailures = append(s.res.PruneFailures, r.err.Error())
			s.logf("prune failed: %v", r.err)
			return
		}
		s.res.Prunes++
		s.res.PackBytesFreed += r.st.FreedBytes
		s.logf("prune: forgot %d snapshots, deleted %d packs (%d bytes), %d pending", len(r.forgotten), r.st.DeletedPacks, r.st.FreedBytes, r.st.PendingTombstones)
	}
	s.faultsOn()
	for b := 0; b < s.o.Backups; b++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := s.envs[b%len(s.envs)]
		if b >= len(s.envs) {
			if _, err := moodlegen.Mutate(ctx, s.admin, e.dbName, e.moodledata, e.spec, moodlegen.Mutation{Seed: s.o.Seed + uint64(b)}); err != nil {
				return fmt.Errorf("mutate %s: %w", e.name, err)
			}
		}
		want, err := capture(ctx, e)
		if err != nil {
			return err
		}
		var outages sync.WaitGroup
		if s.rng.Float64() < s.o.OutageRate {
			s.outage(ctx, &outages)
		}
		res, err := snapshot.Backup(ctx, s.repo, snapshot.Source{Env: e.name, DB: &postgres.DB{URL: e.dbURL}, Moodledata: e.moodledata,
			ConfigPHP: e.configPHP, Exclude: snapshot.DefaultExclude()}, snapshot.Options{Time: base.Add(time.Duration(b) * time.Hour)})
		outages.Wait()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.res.BackupsFailed++
			s.res.FailedReasons[reason(err)]++
			s.logf("backup %d of %s failed: %v", b, e.name, err)
		} else {
			s.res.BackupsOK++
			c := &committed{env: e, want: want}
			if m := res.Snapshot.Manifest; m.Database != nil && m.Files != nil {
				c.bytes = m.Database.DumpBytes + m.Files.Bytes
			}
			s.mu.Lock()
			s.made[res.Snapshot.ID()] = c
			s.mu.Unlock()
			s.logf("backup %d of %s: snapshot %s, %d bytes added", b, e.name, res.Snapshot.ID().Short(), res.Snapshot.Manifest.AddedBytes)
			s.verifyOrRetry(ctx, res.Snapshot.ID(), c)
		}
		if s.o.PruneEvery > 0 && (b+1)%s.o.PruneEvery == 0 {
			if pruning != nil {
				finishPrune(<-pruning)
			}
			pruning = make(chan pruneResult, 1)
			go func(ch chan<- pruneResult) {
				var r pruneResult
				r.forgotten, r.err = s.forget(ctx)
				if r.err == nil {
					r.st, r.err = prune.Run(ctx, s.pruneR, prune.Options{})
				}
				ch <- r
			}(pruning)
		}
	}
	if pruning != nil {
		finishPrune(<-pruning)
	}
	return s.final(ctx)
}

// forget removes, through prune's handle, every snapshot beyond the
// newest Keep of each environment.
func (s *soak) forget(ctx context.Context) ([]blob.ID, error) {
	sns, err := snapshot.List(ctx, s.pruneR)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	byEnv := map[string][]*snapshot.Snapshot{}
	for _, sn := range sns {
		byEnv[sn.Env()] = append(byEnv[sn.Env()], sn)
	}
	var removed []blob.ID
	for _, list := range byEnv {
		for i := 0; i < len(list)-s.o.Keep; i++ {
			if err := s.pruneR.RemoveSnapshot(ctx, list[i].ID()); err != nil {
				return removed, fmt.Errorf("forget: %w", err)
			}
			removed = append(removed, list[i].ID())
		}
	}
	return removed, nil
}

// final stops the faults, prunes once more, checks the repository and
// verifies every snapshot that is left.
func (s *soak) final(ctx context.Context) error {
	s.faultsOff()
	forgotten, err := s.forget(ctx)
	s.mu.Lock()
	for _, id := range forgotten {
		s.forgotten.Insert(id)
	}
	s.res.Forgotten += len(forgotten)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	locks, err := s.repo.Locks(ctx)
	if err != nil {
		return err
	}
	for _, l := range locks {
		s.res.LeftoverLocks = append(s.res.LeftoverLocks, fmt.Sprintf("%s %s (%s, written %v ago)", l.Kind, l.Name[:8], l.Description, time.Since(l.ModTime).Round(time.Second)))
	}
	st, err := prune.Run(ctx, s.pruneR, prune.Options{})
	if err != nil {
		s.res.PrunesFailed++
		s.res.PruneFailures = append(s.res.PruneFailures, "final: "+err.Error())
	} else {
		s.res.Prunes++
		s.res.PackBytesFreed += st.FreedBytes
		s.res.FinalPending = st.PendingTombstones
	}
	res, err := checker.Check(ctx, s.repo, checker.Options{ReadData: true})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	s.res.CheckOK = res.OK()
	s.res.CheckSummary = fmt.Sprintf("%d snapshots, %d packs, %d blobs, %d packs read", res.Snapshots, res.Packs, res.Blobs, res.PacksRead)
	if !res.OK() {
		s.res.CheckSummary += ": " + strings.Join(res.Errors, "; ")
	}
	sns, err := snapshot.List(ctx, s.repo)
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	s.res.FinalSnapshots = len(sns)
	present := blob.NewSet()
	for _, sn := range sns {
		present.Insert(sn.ID())
	}
	for id, c := range s.made {
		switch {
		case s.forgotten.Has(id):
		case !present.Has(id):
			s.lose(id, c, "vanished although never forgotten")
		default:
			s.verifyOrRetry(ctx, id, c)
		}
	}
	return nil
}

// verifyOrRetry verifies a snapshot with the faults as they are; when a
// fault outlasted the retries it verifies again without faults. Only a
// snapshot that does not restore exactly without faults is lost.
func (s *soak) verifyOrRetry(ctx context.Context, id blob.ID, c *committed) {
	err := s.verify(ctx, id, c)
	if err != nil && !errors.Is(err, errMismatch) && ctx.Err() == nil {
		s.logf("verify %s failed under faults (%v); again without faults", id.Short(), err)
		s.res.VerifyRetried++
		s.faultsOff()
		err = s.verify(ctx, id, c)
		s.faultsOn()
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		s.lose(id, c, err.Error())
		return
	}
	s.res.Verified++
	s.res.BytesVerified += c.bytes
}

func (s *soak) lose(id blob.ID, c *committed, why string) {
	s.res.BytesLost += max(c.bytes, 1)
	s.res.LostSnapshots = append(s.res.LostSnapshots, fmt.Sprintf("%s of %s: %s", id.Short(), c.env.name, why))
	fmt.Fprintf(s.out, "LOST: snapshot %s of %s: %s\n", id.Short(), c.env.name, why)
}

var errMismatch = errors.New("restored content differs")

// verify restores snapshot id into a folder, loads its db.sql into a
// scratch database and compares everything with the recorded state.
func (s *soak) verify(ctx context.Context, id blob.ID, c *committed) error {
	sn, err := snapshot.Load(ctx, s.repo, id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.scratch++
	n := s.scratch
	s.mu.Unlock()
	dir := filepath.Join(s.dir, fmt.Sprintf("verify-%d", n))
	defer os.RemoveAll(dir)
	if _, err := restore.ToDir(ctx, s.repo, sn, dir, restore.Options{}); err != nil {
		return err
	}
	files, err := moodlegen.TreeDigest(filepath.Join(dir, "moodledata"), snapshot.DefaultExclude())
	if err != nil {
		return err
	}
	if d := moodlegen.DiffTrees(c.want.files, files); len(d) > 0 {
		return fmt.Errorf("%w: moodledata: %s", errMismatch, strings.Join(d[:min(3, len(d))], "; "))
	}
	cp, err := os.ReadFile(filepath.Join(dir, "config.php"))
	if err != nil || string(cp) != string(c.want.configPHP) {
		return fmt.Errorf("%w: config.php (%v)", errMismatch, err)
	}
	name := fmt.Sprintf("%s_v%d", c.env.dbName, n)
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	url, err := moodlegen.DatabaseURL(s.admin, name)
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", filepath.Join(dir, "db.sql")).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: psql: %v: %s", errMismatch, err, out)
	}
	got, err := moodlegen.DatabaseDigest(ctx, url)
	if err != nil {
		return err
	}
	if d := c.want.db.Diff(got); len(d) > 0 {
		return fmt.Errorf("%w: database: %s", errMismatch, strings.Join(d[:min(3, len(d))], "; "))
	}
	return nil
}

func capture(ctx context.Context, e *env) (state, error) {
	db, err := moodlegen.DatabaseDigest(ctx, e.dbURL)
	if err != nil {
		return state{}, err
	}
	files, err := moodlegen.TreeDigest(e.moodledata, snapshot.DefaultExclude())
	if err != nil {
		return state{}, err
	}
	cp, err := os.ReadFile(e.configPHP)
	if err != nil {
		return state{}, err
	}
	return state{db: db, files: files, configPHP: cp}, nil
}

func (s *soak) dropDatabases(prefix string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix)
	if err != nil {
		return
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, n := range names {
		conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)")
	}
}

// collect gathers the fault and retry counters.
func (s *soak) collect() {
	if s.proxy != nil {
		st := s.proxy.Stats()
		s.res.Requests = st.Requests
		for k, v := range st.Injected {
			s.res.ProxyFaults[string(k)] += v
		}
	}
	for _, st := range s.stacks {
		s.res.BackendFaults += st.faults.Injected()
		s.res.Retries += st.retry.Retries()
	}
}

// reason shortens an error to what failed, for counting.
func reason(err error) string {
	msg := err.Error()
	for _, marker := range []string{"503", "500", "connection reset", "stalled", "injected fault", "refused", "EOF"} {
		if strings.Contains(msg, marker) {
			return marker
		}
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "\nsoak finished in %v (seed %d)\n", r.Duration.Round(time.Second), r.Options.Seed)
	fmt.Fprintf(w, "  backups:            %d committed, %d failed (faults outlasted the retries)\n", r.BackupsOK, r.BackupsFailed)
	fmt.Fprintf(w, "  prunes:             %d (concurrent with backups), %d failed; %d snapshots forgotten, %d pack bytes freed\n", r.Prunes, r.PrunesFailed, r.Forgotten, r.PackBytesFreed)
	fmt.Fprintf(w, "  faults injected:    %d (%s)\n", r.FaultsInjected(), r.faultList())
	fmt.Fprintf(w, "  S3 requests:        %d\n", r.Requests)
	fmt.Fprintf(w, "  operations retried: %d\n", r.Retries)
	fmt.Fprintf(w, "  snapshots verified: %d restores compared byte for byte (%d bytes of content); %d repeated without faults\n", r.Verified, r.BytesVerified, r.VerifyRetried)
	fmt.Fprintf(w, "  final check:        %v (%s); %d snapshots left\n", map[bool]string{true: "ok", false: "DAMAGE"}[r.CheckOK], r.CheckSummary, r.FinalSnapshots)
	fmt.Fprintf(w, "  bytes lost:         %d\n", r.BytesLost)
	for _, l := range r.LostSnapshots {
		fmt.Fprintf(w, "    lost: %s\n", l)
	}
	if len(r.FailedReasons) > 0 {
		fmt.Fprintf(w, "  failed backups by cause: %s\n", mapList(r.FailedReasons))
	}
	for _, f := range r.PruneFailures {
		fmt.Fprintf(w, "  failed prune: %s\n", f)
	}
	if len(r.LeftoverLocks) > 0 || r.FinalPending > 0 {
		fmt.Fprintf(w, "  at the end, with every session ended: %d lock file(s) left, %d mark(s) the last prune could not sweep\n", len(r.LeftoverLocks), r.FinalPending)
		for _, l := range r.LeftoverLocks {
			fmt.Fprintf(w, "    lock: %s\n", l)
		}
	}
}

func (r *Result) faultList() string {
	m := map[string]int{"outage": r.Outages, "backend error/torn write": r.BackendFaults}
	for k, v := range r.ProxyFaults {
		m["proxy "+k] = v
	}
	return mapList(m)
}

func mapList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func (r *Result) markdown() string {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "| soak run | |\n|---|---|\n")
	shared := ""
	if o.Shared {
		shared = " --shared"
	}
	fmt.Fprintf(&b, "| command | `go run ./scripts/soak --backups %d --envs %d --prune-every %d --keep %d --fault-rate %g --outage-rate %g --spec %s --seed %d%s` |\n",
		o.Backups, o.Envs, o.PruneEvery, o.Keep, o.FaultRate, o.OutageRate, o.Spec, o.Seed, shared)
	fmt.Fprintf(&b, "| duration | %v |\n", r.Duration.Round(time.Second))
	fmt.Fprintf(&b, "| backups committed / failed | %d / %d |\n", r.BackupsOK, r.BackupsFailed)
	fmt.Fprintf(&b, "| prunes (concurrent with backups) / failed | %d / %d |\n", r.Prunes, r.PrunesFailed)
	fmt.Fprintf(&b, "| snapshots forgotten | %d |\n", r.Forgotten)
	fmt.Fprintf(&b, "| pack bytes freed by the prunes | %d |\n", r.PackBytesFreed)
	fmt.Fprintf(&b, "| at the end: lock files left / marks the last prune could not sweep | %d / %d |\n", len(r.LeftoverLocks), r.FinalPending)
	fmt.Fprintf(&b, "| S3 requests | %d |\n", r.Requests)
	fmt.Fprintf(&b, "| faults injected | %d (%s) |\n", r.FaultsInjected(), r.faultList())
	fmt.Fprintf(&b, "| operations retried | %d |\n", r.Retries)
	fmt.Fprintf(&b, "| snapshots verified (restored and compared) | %d (%d bytes of content) |\n", r.Verified, r.BytesVerified)
	fmt.Fprintf(&b, "| verifications repeated without faults | %d |\n", r.VerifyRetried)
	fmt.Fprintf(&b, "| final check --read-data | %s (%s) |\n", map[bool]string{true: "ok", false: "DAMAGE"}[r.CheckOK], r.CheckSummary)
	fmt.Fprintf(&b, "| **bytes lost** | **%d** |\n", r.BytesLost)
	return b.String()
}
