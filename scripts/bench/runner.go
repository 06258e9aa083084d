package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// command is one program to run.
type command struct {
	args []string // argv; args[0] is looked up in PATH
	dir  string   // working directory ("" = the harness's)
	env  []string // added to the harness's environment
	// stdin and stdout name files to read from and write to; "" means the
	// neighbouring command of a pipeline, or nothing (stdin) and a bounded
	// capture (stdout) at the ends.
	stdin, stdout string
}

func (c command) String() string {
	var b strings.Builder
	for i, a := range c.args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if strings.ContainsAny(a, " \t'\"$|&;<>*?") || a == "" {
			b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
		} else {
			b.WriteString(a)
		}
	}
	if c.stdin != "" {
		b.WriteString(" < " + c.stdin)
	}
	if c.stdout != "" {
		b.WriteString(" > " + c.stdout)
	}
	return b.String()
}

// step is a pipeline: each command's stdout feeds the next one's stdin,
// like `a | b` with pipefail.
type step []command

func (s step) String() string {
	parts := make([]string, len(s))
	for i, c := range s {
		parts[i] = c.String()
	}
	return strings.Join(parts, " | ")
}

// usage is what a step or phase cost.
type usage struct {
	Wall   time.Duration `json:"-"`
	User   time.Duration `json:"-"`
	Sys    time.Duration `json:"-"`
	MaxRSS int64         `json:"max_rss_bytes"` // largest resident set of any one process
}

// CPU returns user + system time.
func (u usage) CPU() time.Duration { return u.User + u.Sys }

// add accumulates a step that ran after u: times add up, the peak RSS is
// the larger one.
func (u *usage) add(v usage) {
	u.Wall += v.Wall
	u.User += v.User
	u.Sys += v.Sys
	u.MaxRSS = max(u.MaxRSS, v.MaxRSS)
}

// stepError is a failed command with the end of its stderr.
type stepError struct {
	cmd    string
	err    error
	stderr string
}

func (e *stepError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.cmd, e.err)
	if t := strings.TrimSpace(e.stderr); t != "" {
		msg += "\n    stderr (last lines):\n      " + strings.ReplaceAll(t, "\n", "\n      ")
	}
	return msg
}

func (e *stepError) Unwrap() error { return e.err }

// runner starts commands in their own process groups, so that a timeout or
// an interrupt kills a tool together with everything it started, and
// measures them with the rusage the kernel reports when they are reaped.
type runner struct {
	timeout time.Duration // per step
	verbose bool
	log     io.Writer
	secrets []string // values scrubbed from logged command lines and stderr
}

// scrub hides secrets that might appear in text we print.
func (r *runner) scrub(s string) string {
	for _, v := range r.secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}

// run executes a pipeline, returning its cost and the captured stdout of
// the last command (at most 1 MiB).
func (r *runner) run(ctx context.Context, s step) (usage, []byte, error) {
	if len(s) == 0 {
		return usage{}, nil, nil
	}
	if r.verbose {
		fmt.Fprintf(r.log, "    $ %s\n", r.scrub(s.String()))
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	cmds := make([]*exec.Cmd, len(s))
	stderrs := make([]*tailBuffer, len(s))
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			_ = c.Close()
		}
		closers = nil
	}
	defer closeAll()
	stdout := &tailBuffer{max: 1 << 20, keepHead: true}
	self, err := os.Executable()
	if err != nil {
		return usage{}, nil, err
	}
	reports := make([]*os.File, len(s))
	var reportWriters []*os.File // the reapers' ends, closed once started
	defer func() {
		for _, f := range reports {
			if f != nil {
				_ = f.Close()
			}
		}
	}()
	for i, c := range s {
		// Every tool runs under a fresh reaper (see reap.go) that reports
		// its rusage on a pipe.
		cmd := exec.CommandContext(ctx, self, append([]string{reapArg}, c.args...)...)
		pr, pw, err := os.Pipe()
		if err != nil {
			return usage{}, nil, err
		}
		reports[i] = pr
		cmd.ExtraFiles = []*os.File{pw}
		reportWriters = append(reportWriters, pw)
		cmd.Dir = c.dir
		cmd.Env = append(os.Environ(), c.env...)
		// Pdeathsig: if the harness itself is killed, its children die too.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		cmd.Cancel = func() error { return killGroup(cmd) }
		cmd.WaitDelay = 5 * time.Second
		stderrs[i] = &tailBuffer{max: 4096}
		cmd.Stderr = stderrs[i]
		if c.stdin != "" {
			f, err := os.Open(c.stdin)
			if err != nil {
				return usage{}, nil, fmt.Errorf("%s: open stdin: %w", c.args[0], err)
			}
			closers = append(closers, f)
			cmd.Stdin = f
		}
		if c.stdout != "" {
			f, err := os.Create(c.stdout)
			if err != nil {
				return usage{}, nil, fmt.Errorf("%s: create stdout: %w", c.args[0], err)
			}
			closers = append(closers, f)
			cmd.Stdout = f
		} else if i == len(s)-1 {
			cmd.Stdout = stdout
		}
		cmds[i] = cmd
	}
	// Connect neighbours with OS pipes: data flows between the tools
	// without passing through (and costing CPU in) the harness.
	var parentEnds []*os.File
	for i := 0; i+1 < len(cmds); i++ {
		if cmds[i].Stdout != nil || cmds[i+1].Stdin != nil {
			return usage{}, nil, fmt.Errorf("pipeline %s: a command in the middle redirects its stdout or stdin", s)
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return usage{}, nil, err
		}
		cmds[i].Stdout, cmds[i+1].Stdin = pw, pr
		parentEnds = append(parentEnds, pr, pw)
	}
	start := time.Now()
	var started []int
	var startErr error
	for i, cmd := range cmds {
		// The reaper would start and then fail to run a missing tool;
		// find it first so the error names the tool, not the reaper.
		if _, err := exec.LookPath(s[i].args[0]); err != nil {
			startErr = &stepError{cmd: r.scrub(s[i].String()), err: fmt.Errorf("start: %w", err)}
			break
		}
		if err := cmd.Start(); err != nil {
			startErr = &stepError{cmd: r.scrub(s[i].String()), err: fmt.Errorf("start: %w", err)}
			break
		}
		started = append(started, i)
	}
	// The children hold their own copies of the pipe ends; ours must go so
	// that readers see EOF when writers exit.
	for _, f := range append(parentEnds, reportWriters...) {
		_ = f.Close()
	}
	if startErr != nil {
		for _, i := range started {
			_ = killGroup(cmds[i])
		}
	}

	var u usage
	errs := make([]error, len(cmds))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, i := range started {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmds[i].Wait()
			var ut, st, rss int64
			_, scanErr := fmt.Fscan(reports[i], &ut, &st, &rss)
			mu.Lock()
			defer mu.Unlock()
			if scanErr == nil {
				u.User += time.Duration(ut) * time.Microsecond
				u.Sys += time.Duration(st) * time.Microsecond
				u.MaxRSS = max(u.MaxRSS, rss*1024) // Linux reports KiB
			}
			if err != nil {
				errs[i] = err
				// A failing command leaves its neighbours blocked on a
				// pipe; end the whole pipeline.
				for _, j := range started {
					if j != i {
						_ = killGroup(cmds[j])
					}
				}
			}
		}()
	}
	wg.Wait()
	u.Wall = time.Since(start)
	if startErr != nil {
		return u, nil, startErr
	}
	// Report the first command that failed on its own rather than one
	// that died because a neighbour failed.
	var own, killed error
	for i, err := range errs {
		if err == nil {
			continue
		}
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			err = fmt.Errorf("killed after %s (--timeout): %w", r.timeout, err)
		case ctx.Err() != nil:
			err = fmt.Errorf("interrupted: %w", err)
		}
		se := &stepError{cmd: r.scrub(s[i].String()), err: err, stderr: r.scrub(stderrs[i].String())}
		if !collateral(cmds[i]) {
			own = se
			break
		}
		if killed == nil {
			killed = se
		}
	}
	if own == nil {
		own = killed
	}
	return u, stdout.Bytes(), own
}

// killGroup kills a started command's process group.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// collateral reports whether a command most likely died because a
// neighbour in its pipeline failed: killed by a signal (SIGPIPE, or our
// SIGKILL), or a shell reporting a child's SIGPIPE (status 141).
func collateral(cmd *exec.Cmd) bool {
	if cmd.ProcessState == nil {
		return false
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && (ws.Signaled() || ws.ExitStatus() == 128+int(syscall.SIGPIPE))
}

// runAll runs steps one after the other and adds up their cost.
func (r *runner) runAll(ctx context.Context, steps []step) (usage, []byte, error) {
	var total usage
	var out []byte
	for _, s := range steps {
		u, o, err := r.run(ctx, s)
		total.add(u)
		out = o
		if err != nil {
			return total, out, err
		}
	}
	return total, out, nil
}

// tailBuffer keeps the last max bytes written to it (or, with keepHead,
// the first max bytes): enough of a failing tool's output to say why,
// without unbounded memory.
type tailBuffer struct {
	mu       sync.Mutex
	max      int
	keepHead bool
	buf      []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keepHead {
		if room := t.max - len(t.buf); room > 0 {
			t.buf = append(t.buf, p[:min(room, len(p))]...)
		}
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}

func (t *tailBuffer) String() string { return string(t.Bytes()) }

// dirSize returns the apparent size of the files under dir (what `du -sb`
// prints), or -1 when dir cannot be walked.
func dirSize(dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return n
}
