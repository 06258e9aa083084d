package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks bad flags and missing prerequisites: exit 2.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.IntVar(&o.Backups, "backups", 200, "number of backups in all")
	fs.IntVar(&o.Envs, "envs", 5, "number of environments (backed up in turn)")
	fs.IntVar(&o.PruneEvery, "prune-every", 20, "forget and prune after this many backups (0: never)")
	fs.IntVar(&o.Keep, "keep", 3, "snapshots kept per environment when forgetting")
	fs.Float64Var(&o.FaultRate, "fault-rate", 0.05, "probability that a storage request gets a 503 (other faults scale with it)")
	fs.Float64Var(&o.OutageRate, "outage-rate", 0.1, "probability that the S3 server goes away for a moment during a backup")
	fs.StringVar(&o.Spec, "spec", "tiny", "moodlegen preset of the environments: tiny or demo")
	fs.Uint64Var(&o.Seed, "seed", uint64(time.Now().UnixNano()), "seed of the fault schedule and the changes")
	fs.StringVar(&o.Out, "out", "", "also write the figures as markdown to this file")
	fs.StringVar(&o.PG, "pg", "", "PostgreSQL admin URL (default $MBACKUP_TEST_PG or postgres://postgres@127.0.0.1:5432/postgres)")
	fs.BoolVar(&o.Verbose, "v", false, "print every backup, prune and verification")
	fs.BoolVar(&o.Shared, "shared", false, "backups and prunes share one repository handle, as in mbackup serve (default: prune has its own, as a separate process)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "soak: unexpected arguments %v (see -h)\n", fs.Args())
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, o, stdout)
	if res != nil {
		res.print(stdout)
		if o.Out != "" {
			if werr := os.WriteFile(o.Out, []byte(res.markdown()), 0o644); werr != nil {
				fmt.Fprintf(stderr, "soak: write %s: %v\n", o.Out, werr)
			}
		}
	}
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 1
	case res.BytesLost > 0 || !res.CheckOK:
		fmt.Fprintln(stderr, "soak: FAILED: data was lost or the final check found damage")
		return 1
	}
	return 0
}

func (o *Options) validate() error {
	switch {
	case o.Backups < 1:
		return errors.New("--backups must be at least 1")
	case o.Envs < 1:
		return errors.New("--envs must be at least 1")
	case o.PruneEvery < 0 || o.Keep < 1:
		return errors.New("--prune-every must be 0 or more and --keep at least 1")
	case o.FaultRate < 0 || o.FaultRate > 0.3:
		return errors.New("--fault-rate must be between 0 and 0.3 (beyond that, faults outlast every retry)")
	case o.OutageRate < 0 || o.OutageRate > 1:
		return errors.New("--outage-rate must be between 0 and 1")
	case o.Spec != "tiny" && o.Spec != "demo":
		return fmt.Errorf("--spec %q: want tiny or demo", o.Spec)
	}
	return nil
}
