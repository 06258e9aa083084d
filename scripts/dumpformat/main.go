// Command dumpformat measures which pg_dump format suits mbackup best: how
// much of a nightly dump is new after a day of use under the engine's
// content-defined chunking, and how fast each format dumps and restores.
//
//	go run ./scripts/dumpformat [--preset bench] [--scale 1]
//
// It generates a Moodle-like database with moodlegen, dumps it in each
// format into a fresh repository (night 1), simulates a day of use, dumps
// again (night 2), and restores night 2 into empty databases. The result
// is a markdown table; README.md quotes it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/archiver"
	"github.com/mbackup/mbackup/engine/backend/local"
	"github.com/mbackup/mbackup/engine/crypto"
	"github.com/mbackup/mbackup/scripts/moodlegen"
)

type format struct {
	name string
	args []string // pg_dump arguments; "" output means stdout
	dir  bool     // directory format: dumped to a folder, archived as files
	repo *engine.Repository
	// results
	size1, size2 int64
	added2       int64
	dumpTime     time.Duration
	restore      map[string]time.Duration
}

func main() {
	preset := flag.String("preset", "bench", "moodlegen preset: tiny, demo or bench")
	scale := flag.Float64("scale", 1, "scale the preset")
	admin := flag.String("pg", "postgres://postgres@127.0.0.1:5432/postgres", "admin URL of the PostgreSQL server")
	flag.Parse()
	if err := run(*preset, *scale, *admin); err != nil {
		fmt.Fprintln(os.Stderr, "dumpformat:", err)
		os.Exit(1)
	}
}

func run(preset string, scale float64, admin string) error {
	ctx := context.Background()
	spec, err := moodlegen.Preset(preset)
	if err != nil {
		return err
	}
	spec = spec.Scaled(scale)
	work, err := os.MkdirTemp("", "dumpformat")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	const db = "mbackup_dumpformat"
	defer moodlegen.DropDatabase(ctx, admin, db)
	fmt.Fprintf(os.Stderr, "generating the %s database…\n", preset)
	if err := moodlegen.CreateDatabase(ctx, admin, db, spec); err != nil {
		return err
	}
	// Mutate simulates uploads too, so it needs the matching moodledata.
	if _, err := moodlegen.CreateMoodledata(filepath.Join(work, "moodledata"), spec); err != nil {
		return err
	}
	url, _ := moodlegen.DatabaseURL(admin, db)
	formats := []*format{
		{name: "plain (-Fp)", args: []string{"--format=plain"}},
		{name: "custom (-Fc -Z0)", args: []string{"--format=custom", "--compress=0"}},
		{name: "directory (-Fd -Z0 -j2)", args: []string{"--format=directory", "--compress=0", "--jobs=2"}, dir: true},
		{name: "custom, compressed (-Fc)", args: []string{"--format=custom"}},
	}
	for i, f := range formats {
		be, err := local.Open(filepath.Join(work, fmt.Sprintf("repo%d", i)))
		if err != nil {
			return err
		}
		f.repo, err = engine.Init(ctx, be, "pw", engine.InitOptions{}, engine.Options{KDF: crypto.KDFParams{N: 1024, R: 8, P: 1}})
		if err != nil {
			return err
		}
		f.restore = map[string]time.Duration{}
	}
	for night := 1; night <= 2; night++ {
		if night == 2 {
			fmt.Fprintln(os.Stderr, "simulating a day of use…")
			if _, err := moodlegen.Mutate(ctx, admin, db, filepath.Join(work, "moodledata"), spec, moodlegen.Mutation{Seed: 2}); err != nil {
				return err
			}
		}
		for i, f := range formats {
			fmt.Fprintf(os.Stderr, "night %d: %s\n", night, f.name)
			out := filepath.Join(work, fmt.Sprintf("dump%d-%d", i, night))
			start := time.Now()
			cmd := exec.Command("pg_dump", append(f.args, "--file="+out, "--dbname="+url)...)
			if b, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("pg_dump %s: %v %s", f.name, err, b)
			}
			if night == 2 {
				f.dumpTime = time.Since(start)
			}
			size, stored, err := store(ctx, f, out)
			if err != nil {
				return err
			}
			if night == 1 {
				f.size1 = size
			} else {
				f.size2, f.added2 = size, stored
			}
		}
	}
	for i, f := range formats[:3] {
		dump := filepath.Join(work, fmt.Sprintf("dump%d-2", i))
		var cmds map[string][]string
		switch {
		case strings.HasPrefix(f.name, "plain"):
			cmds = map[string][]string{"1 job": {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", dump}}
		default:
			cmds = map[string][]string{
				"1 job":  {"pg_restore", "--no-owner", "--exit-on-error", dump},
				"2 jobs": {"pg_restore", "--no-owner", "--exit-on-error", "--jobs=2", dump},
			}
		}
		for label, c := range cmds {
			target := fmt.Sprintf("mbackup_dumpformat_r%d", i)
			moodlegen.DropDatabase(ctx, admin, target)
			if b, err := exec.Command("createdb", "--dbname="+admin, "-T", "template0", target).CombinedOutput(); err != nil {
				// createdb takes the name as an argument, not --dbname
				if b2, err2 := exec.Command("psql", "-X", "-q", "-d", admin, "-c", "CREATE DATABASE "+target+" TEMPLATE template0").CombinedOutput(); err2 != nil {
					return fmt.Errorf("create %s: %v %s %s", target, err2, b, b2)
				}
			}
			turl, _ := moodlegen.DatabaseURL(admin, target)
			args := append([]string{}, c[1:]...)
			args = append(args, "--dbname="+turl)
			fmt.Fprintf(os.Stderr, "restore %s, %s\n", f.name, label)
			start := time.Now()
			if b, err := exec.Command(c[0], args...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v %s", c[0], err, b)
			}
			f.restore[label] = time.Since(start)
			moodlegen.DropDatabase(ctx, admin, target)
		}
	}
	fmt.Printf("| format | dump size | night 2 stored after dedup+zstd | share of dump | dump time | restore, 1 job | restore, 2 jobs |\n|---|---|---|---|---|---|---|\n")
	for _, f := range formats {
		r1, r2 := "—", "—"
		if d, ok := f.restore["1 job"]; ok {
			r1 = d.Round(100 * time.Millisecond).String()
		}
		if d, ok := f.restore["2 jobs"]; ok {
			r2 = d.Round(100 * time.Millisecond).String()
		}
		fmt.Printf("| %s | %.1f MiB | %.2f MiB | %.1f%% | %s | %s | %s |\n", f.name, float64(f.size2)/(1<<20),
			float64(f.added2)/(1<<20), 100*float64(f.added2)/float64(f.size2), f.dumpTime.Round(100*time.Millisecond), r1, r2)
	}
	return nil
}

// store saves a dump (file or folder) into the format's repository and
// returns its size and the bytes it added.
func store(ctx context.Context, f *format, path string) (size, stored int64, err error) {
	if f.dir {
		_, st, err := archiver.Archive(ctx, f.repo, path, archiver.Options{})
		if err != nil {
			return 0, 0, err
		}
		return st.Bytes, st.Stored, f.repo.Flush(ctx)
	}
	file, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer file.Close()
	_, st, err := f.repo.SaveStream(ctx, io.Reader(file), nil)
	if err != nil {
		return 0, 0, err
	}
	return st.Bytes, st.Stored, f.repo.Flush(ctx)
}
