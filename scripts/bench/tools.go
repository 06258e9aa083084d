package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// backendKind is where a repository lives.
type backendKind string

const (
	backendLocal backendKind = "local"
	backendS3    backendKind = "s3"
)

// inputs is what every tool backs up: the same pg_dump stream and the same
// moodledata folder minus the same excludes.
type inputs struct {
	envDir     string   // parent of moodledata; tools run here
	moodledata string   // absolute path, always envDir/moodledata
	dbURL      string   // connection URL of the generated database
	exclude    []string // relative to moodledata, mbackup's defaults
	password   string   // repository password, the same for every tool
}

// pgDump is the dump command every tool but mbackup (which runs pg_dump
// itself, with the same format flags) reads from.
func (in *inputs) pgDump() command {
	return command{args: []string{"pg_dump", "--format=custom", "--compress=0", "--no-password", "--dbname=" + in.dbURL}}
}

// pgRestoreSQL converts a custom-format dump to the plain SQL that
// `mbackup restore --target-dir` writes, reading the dump from stdin when
// from is "".
func pgRestoreSQL(from, to string) command {
	c := command{args: []string{"pg_restore", "--file=" + to}}
	if from != "" {
		c.args = append(c.args, from)
	}
	return c
}

// target is one repository: one tool on one backend.
type target struct {
	tool    tool
	kind    backendKind
	dir     string // private folder: repository (local), config, caches
	repoDir string // local repository folder
	bucket  string // S3 bucket
	s3      *s3Server
	env     []string
}

func (t *target) String() string { return t.tool.name() + "/" + string(t.kind) }

// size returns the bytes the repository occupies: the folder, or the
// bucket's folder on the S3 server's disk.
func (t *target) size() int64 {
	if t.kind == backendS3 {
		return dirSize(filepath.Join(t.s3.Root, t.bucket))
	}
	return dirSize(t.repoDir)
}

// cmd returns a command of the tool with the target's environment.
func (t *target) cmd(dir string, args ...string) command {
	return command{args: args, dir: dir, env: t.env}
}

// restored says where a restore put its output.
type restored struct {
	moodledata string // restored moodledata folder
	dump       string // restored database: db.sql or db.pgdump
}

// tool drives one backup program.
type tool interface {
	name() string
	// check verifies that the program is installed and usable and
	// returns its version line; the error says how to install it.
	check(ctx context.Context, r *runner) (string, error)
	supports(k backendKind) bool
	// setup prepares t (environment, config files) before init runs.
	setup(t *target, in *inputs) error
	initSteps(t *target, in *inputs) []step
	backupSteps(t *target, in *inputs, day int) []step
	// restoreSteps restores the newest snapshot to dst, converting the
	// dump to plain SQL when sql is set (mbackup always does).
	restoreSteps(t *target, in *inputs, dst string, sql bool) ([]step, restored, error)
}

// errSkipPhase marks a phase a tool cannot run (yet); the table says so
// instead of failing the run.
var errSkipPhase = errors.New("phase not supported")

// versionOf runs `prog args...` and returns the first line of its output.
func versionOf(ctx context.Context, prog string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", prog, strings.Join(args, " "), err, line)
	}
	return line, nil
}

// lookPath finds prog in PATH or else in $GOPATH/bin (where `go install`
// puts tools like kopia).
func lookPath(prog string) (string, error) {
	if p, err := exec.LookPath(prog); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(filepath.SplitList(gopath)[0], "bin", prog)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		return p, nil
	}
	return "", exec.ErrNotFound
}

// ---------------------------------------------------------------- mbackup

type mbackupTool struct {
	bin        string
	canRestore bool
}

func (m *mbackupTool) name() string                { return "mbackup" }
func (m *mbackupTool) supports(_ backendKind) bool { return true }

func (m *mbackupTool) check(ctx context.Context, _ *runner) (string, error) {
	if _, err := os.Stat(m.bin); err != nil {
		return "", fmt.Errorf("mbackup binary %s not found: run `make build` or pass --mbackup PATH", m.bin)
	}
	v, err := versionOf(ctx, m.bin, "version")
	if err != nil {
		return "", err
	}
	// restore is a newer command; without it the restore phase is skipped.
	out, err := exec.CommandContext(ctx, m.bin, "restore", "--help").CombinedOutput()
	m.canRestore = err == nil && bytes.Contains(out, []byte("--target-dir"))
	return v, nil
}

func (m *mbackupTool) config(t *target) string { return filepath.Join(t.dir, "mbackup.yaml") }

func (m *mbackupTool) setup(t *target, in *inputs) error {
	url := t.repoDir
	if t.kind == backendS3 {
		url = fmt.Sprintf("s3:http://%s/%s", t.s3.Endpoint, t.bucket)
		t.env = append(t.env, t.s3.env()...)
	}
	t.env = append(t.env, "MBACKUP_PASSWORD="+in.password)
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are YAML
	var ex []string
	for _, e := range in.exclude {
		ex = append(ex, q(e))
	}
	cfg := fmt.Sprintf(`# written by scripts/bench
repository:
  url: %s
  password_env: MBACKUP_PASSWORD
defaults:
  exclude: [%s]
environments:
  bench:
    database: %s
    moodledata: %s
`, q(url), strings.Join(ex, ", "), q(in.dbURL), q(in.moodledata))
	return os.WriteFile(m.config(t), []byte(cfg), 0o600)
}

func (m *mbackupTool) initSteps(t *target, _ *inputs) []step {
	return []step{{t.cmd("", m.bin, "--config", m.config(t), "--quiet", "init")}}
}

func (m *mbackupTool) backupSteps(t *target, _ *inputs, _ int) []step {
	return []step{{t.cmd("", m.bin, "--config", m.config(t), "--quiet", "backup", "bench")}}
}

func (m *mbackupTool) restoreSteps(t *target, _ *inputs, dst string, _ bool) ([]step, restored, error) {
	if !m.canRestore {
		return nil, restored{}, fmt.Errorf("%w: this mbackup has no `restore --target-dir` yet", errSkipPhase)
	}
	s := step{t.cmd("", m.bin, "--config", m.config(t), "--quiet", "restore", "bench",
		"--at", "latest", "--target-dir", dst, "--yes")}
	return []step{s}, restored{moodledata: filepath.Join(dst, "moodledata"), dump: filepath.Join(dst, "db.sql")}, nil
}

// ----------------------------------------------------------------- restic

type resticTool struct {
	bin     string
	fromCmd bool // restic >= 0.17: --stdin-from-command
}

func (r *resticTool) name() string                { return "restic" }
func (r *resticTool) supports(_ backendKind) bool { return true }

var resticVersion = regexp.MustCompile(`restic (\d+)\.(\d+)`)

func (r *resticTool) check(ctx context.Context, _ *runner) (string, error) {
	p, err := lookPath("restic")
	if err != nil {
		return "", errors.New("restic is not installed: apt-get install -y restic")
	}
	r.bin = p
	v, err := versionOf(ctx, p, "version")
	if err != nil {
		return "", err
	}
	if m := resticVersion.FindStringSubmatch(v); m != nil {
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		if major == 0 && minor < 14 {
			return "", fmt.Errorf("%s is too old: compression needs restic >= 0.14", v)
		}
		r.fromCmd = major > 0 || minor >= 17
	}
	return v, nil
}

func (r *resticTool) setup(t *target, in *inputs) error {
	repo := t.repoDir
	if t.kind == backendS3 {
		repo = fmt.Sprintf("s3:http://%s/%s", t.s3.Endpoint, t.bucket)
		t.env = append(t.env, t.s3.env()...)
	}
	t.env = append(t.env, "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD="+in.password,
		"RESTIC_CACHE_DIR="+filepath.Join(t.dir, "cache"))
	return nil
}

func (r *resticTool) initSteps(t *target, _ *inputs) []step {
	return []step{{t.cmd("", r.bin, "init", "--quiet")}}
}

func (r *resticTool) backupSteps(t *target, in *inputs, _ int) []step {
	// Two snapshots per day, as restic users back up a dump and a folder:
	// one command cannot read stdin and walk a folder at once.
	var db step
	if r.fromCmd {
		db = step{t.cmd(in.envDir, append([]string{r.bin, "backup", "--quiet", "--host", "bench", "--tag", "db",
			"--stdin-filename", "db.pgdump", "--stdin-from-command", "--"}, in.pgDump().args...)...)}
	} else {
		db = step{in.pgDump(), t.cmd(in.envDir, r.bin, "backup", "--quiet", "--host", "bench", "--tag", "db",
			"--stdin", "--stdin-filename", "db.pgdump")}
	}
	files := []string{r.bin, "backup", "--quiet", "--host", "bench", "--tag", "files"}
	for _, e := range in.exclude {
		// Without a leading slash restic matches the pattern at any depth
		// of the absolute path, i.e. below this moodledata.
		files = append(files, "--exclude", filepath.Join(filepath.Base(in.moodledata), e))
	}
	files = append(files, filepath.Base(in.moodledata))
	return []step{db, {t.cmd(in.envDir, files...)}}
}

func (r *resticTool) restoreSteps(t *target, in *inputs, dst string, sql bool) ([]step, restored, error) {
	files := step{t.cmd("", r.bin, "restore", "latest", "--quiet", "--host", "bench", "--tag", "files", "--target", dst)}
	dump := t.cmd("", r.bin, "dump", "--quiet", "--host", "bench", "--tag", "db", "latest", "/db.pgdump")
	out := restored{moodledata: filepath.Join(dst, filepath.Base(in.moodledata))}
	var db step
	if sql {
		out.dump = filepath.Join(dst, "db.sql")
		db = step{dump, pgRestoreSQL("", out.dump)}
	} else {
		out.dump = filepath.Join(dst, "db.pgdump")
		dump.stdout = out.dump
		db = step{dump}
	}
	return []step{files, db}, out, nil
}

// ------------------------------------------------------------------- borg

type borgTool struct{ bin string }

func (b *borgTool) name() string                { return "borg" }
func (b *borgTool) supports(k backendKind) bool { return k == backendLocal } // borg 1.x has no S3

func (b *borgTool) check(ctx context.Context, _ *runner) (string, error) {
	p, err := lookPath("borg")
	if err != nil {
		return "", errors.New("borg is not installed: apt-get install -y borgbackup")
	}
	b.bin = p
	return versionOf(ctx, p, "--version")
}

func (b *borgTool) setup(t *target, in *inputs) error {
	t.env = append(t.env, "BORG_REPO="+t.repoDir, "BORG_PASSPHRASE="+in.password,
		"BORG_BASE_DIR="+filepath.Join(t.dir, "home"), "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes")
	return nil
}

func (b *borgTool) initSteps(t *target, _ *inputs) []step {
	// repokey: AES-CTR + HMAC-SHA256, the closest to mbackup's sealing; on
	// this CPU (SHA extensions) it is as fast as repokey-blake2.
	return []step{{t.cmd("", b.bin, "init", "--encryption", "repokey")}}
}

func (b *borgTool) backupSteps(t *target, in *inputs, day int) []step {
	// One archive holds both: "-" reads the dump from stdin.
	args := []string{b.bin, "create", "--compression", "zstd,3", "--stdin-name", "db.pgdump"}
	for _, e := range in.exclude {
		args = append(args, "--exclude", "pp:"+filepath.Join(filepath.Base(in.moodledata), e))
	}
	args = append(args, fmt.Sprintf("::day%d", day), "-", filepath.Base(in.moodledata))
	return []step{{in.pgDump(), t.cmd(in.envDir, args...)}}
}

func (b *borgTool) restoreSteps(t *target, in *inputs, dst string, sql bool) ([]step, restored, error) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, restored{}, err
	}
	steps := []step{{t.cmd(dst, b.bin, "extract", "::day2")}}
	out := restored{moodledata: filepath.Join(dst, filepath.Base(in.moodledata)), dump: filepath.Join(dst, "db.pgdump")}
	if sql {
		out.dump = filepath.Join(dst, "db.sql")
		steps = append(steps, step{pgRestoreSQL(filepath.Join(dst, "db.pgdump"), out.dump)})
	}
	return steps, out, nil
}

// ------------------------------------------------------------------ kopia

type kopiaTool struct{ bin string }

func (k *kopiaTool) name() string                { return "kopia" }
func (k *kopiaTool) supports(_ backendKind) bool { return true }

func (k *kopiaTool) check(ctx context.Context, _ *runner) (string, error) {
	p, err := lookPath("kopia")
	if err != nil {
		return "", errors.New("kopia is not installed (no Debian package): scripts/install-kopia.sh builds it into GOPATH/bin (make bench runs it)")
	}
	k.bin = p
	return versionOf(ctx, p, "--version")
}

func (k *kopiaTool) setup(t *target, in *inputs) error {
	t.env = append(t.env, "KOPIA_PASSWORD="+in.password,
		"KOPIA_CONFIG_PATH="+filepath.Join(t.dir, "repository.config"),
		"KOPIA_LOG_DIR="+filepath.Join(t.dir, "logs"),
		"KOPIA_CHECK_FOR_UPDATES=false")
	if t.kind == backendS3 {
		t.env = append(t.env, t.s3.env()...)
	}
	return nil
}

// dumpSource is the path kopia records the stdin snapshot under.
func (k *kopiaTool) dumpSource(in *inputs) string { return filepath.Join(in.envDir, "db") }

func (k *kopiaTool) initSteps(t *target, in *inputs) []step {
	create := []string{k.bin, "repository", "create"}
	if t.kind == backendS3 {
		// The keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
		create = append(create, "s3", "--bucket", t.bucket, "--endpoint", t.s3.Endpoint, "--disable-tls")
	} else {
		create = append(create, "filesystem", "--path", t.repoDir)
	}
	create = append(create, "--cache-directory", filepath.Join(t.dir, "cache"))
	policy := []string{k.bin, "policy", "set", in.moodledata}
	for _, e := range in.exclude {
		policy = append(policy, "--add-ignore", "/"+e)
	}
	return []step{
		{t.cmd("", create...)},
		{t.cmd("", k.bin, "policy", "set", "--global", "--compression", "zstd")},
		{t.cmd("", policy...)},
	}
}

func (k *kopiaTool) backupSteps(t *target, in *inputs, _ int) []step {
	db := step{in.pgDump(), t.cmd(in.envDir, k.bin, "snapshot", "create", "--stdin-file", "db.pgdump", k.dumpSource(in))}
	files := step{t.cmd(in.envDir, k.bin, "snapshot", "create", in.moodledata)}
	return []step{db, files}
}

func (k *kopiaTool) restoreSteps(t *target, in *inputs, dst string, sql bool) ([]step, restored, error) {
	out := restored{moodledata: filepath.Join(dst, "moodledata")}
	dumpDir := filepath.Join(dst, "dump")
	steps := []step{
		{t.cmd("", k.bin, "restore", in.moodledata, out.moodledata)},
		{t.cmd("", k.bin, "restore", k.dumpSource(in), dumpDir)},
	}
	out.dump = filepath.Join(dumpDir, "db.pgdump")
	if sql {
		steps = append(steps, step{pgRestoreSQL(out.dump, filepath.Join(dst, "db.sql"))})
		out.dump = filepath.Join(dst, "db.sql")
	}
	return steps, out, nil
}
