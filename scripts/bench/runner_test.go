package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sh(script string) command { return command{args: []string{"sh", "-c", script}} }

func TestRunnerPipelines(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte("b\na\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	tests := []struct {
		name    string
		step    step
		wantOut string // captured stdout of the last command
		file    string // or content of out
		wantErr string // substring of the error; "" = success
	}{
		{"single", step{sh("echo hello")}, "hello\n", "", ""},
		{"pipe", step{sh("printf 'x\\ny\\n'"), sh("wc -l | tr -d ' '")}, "2\n", "", ""},
		{"three stages", step{sh("seq 1 1000"), sh("grep 7"), sh("wc -l | tr -d ' '")}, "271\n", "", ""},
		{"stdin and stdout files", step{{args: []string{"sort"}, stdin: in, stdout: out}}, "", "a\nb\nc\n", ""},
		{"failure names the command and its stderr", step{sh("echo first >&2; echo 'the reason' >&2; exit 3")}, "", "", "the reason"},
		{"failing writer is reported, not the reader it starves", step{sh("echo oops >&2; exit 4"), sh("cat")}, "", "", "exit status 4"},
		{"failing reader is reported, not the writer it kills", step{sh("yes"), sh("head -c 10 >/dev/null; echo bad >&2; exit 5")}, "", "", "exit status 5"},
		{"missing program", step{{args: []string{"/nonexistent/tool"}}}, "", "", "start"},
	}
	r := &runner{timeout: 10 * time.Second}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := r.run(context.Background(), tt.step)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.wantOut {
				t.Errorf("stdout = %q, want %q", got, tt.wantOut)
			}
			if tt.file != "" {
				b, err := os.ReadFile(out)
				if err != nil || string(b) != tt.file {
					t.Errorf("stdout file = %q (%v), want %q", b, err, tt.file)
				}
			}
		})
	}
}

func TestRunnerMeasures(t *testing.T) {
	r := &runner{timeout: time.Minute}
	// Two processes: CPU adds up over both; RSS is the larger one's.
	u, _, err := r.run(context.Background(), step{
		sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done"),
		{args: []string{"sh", "-c", "cat >/dev/null"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU() < 50*time.Millisecond {
		t.Errorf("CPU = %v for a busy loop, want at least 50ms", u.CPU())
	}
	if u.Wall < u.CPU()/2 {
		t.Errorf("wall %v is implausibly short for CPU %v in two processes", u.Wall, u.CPU())
	}
	if u.MaxRSS < 100<<10 || u.MaxRSS > 1<<30 {
		t.Errorf("max RSS = %d bytes, want a shell's few MiB", u.MaxRSS)
	}
}

func TestRunnerTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := &runner{timeout: 300 * time.Millisecond}
	start := time.Now()
	// The grandchild would outlive a kill of the shell alone.
	_, _, err := r.run(context.Background(), step{sh("sleep 30 & echo $! > " + pidFile + "; wait")})
	if err == nil || !strings.Contains(err.Error(), "--timeout") {
		t.Fatalf("error = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run returned after %v, want shortly after the 300ms timeout", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still runs after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunnerInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	r := &runner{timeout: time.Minute}
	_, _, err := r.run(ctx, step{sh("sleep 30")})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("error = %v, want an interruption", err)
	}
}

func TestRunnerScrubsSecrets(t *testing.T) {
	r := &runner{timeout: 10 * time.Second, secrets: []string{"s3cr3t-value"}}
	_, _, err := r.run(context.Background(), step{sh("echo 'auth failed for s3cr3t-value' >&2; exit 1")})
	var se *stepError
	if !errors.As(err, &se) {
		t.Fatalf("error = %v, want a stepError", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-value") {
		t.Errorf("error leaks the secret: %v", err)
	}
}

func TestRunAllStopsAtFirstFailure(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	r := &runner{timeout: 10 * time.Second}
	_, _, err := r.runAll(context.Background(), []step{{sh("exit 1")}, {sh("touch " + marker)}})
	if err == nil {
		t.Fatal("runAll succeeded with a failing first step")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the step after the failure ran")
	}
}

func TestTailBuffer(t *testing.T) {
	tail := &tailBuffer{max: 5}
	tail.Write([]byte("abc"))
	tail.Write([]byte("defg"))
	if got := tail.String(); got != "cdefg" {
		t.Errorf("tail = %q, want the last 5 bytes %q", got, "cdefg")
	}
	head := &tailBuffer{max: 5, keepHead: true}
	head.Write([]byte("abc"))
	head.Write([]byte("defg"))
	if got := head.String(); got != "abcde" {
		t.Errorf("head = %q, want the first 5 bytes %q", got, "abcde")
	}
}

// TestMain lets the test binary serve as the reaper, as the harness binary
// does in main.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == reapArg {
		os.Exit(reap(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// A tool's peak RSS is its own, not the harness's: Linux carries the
// parent's resident set into a forked child's peak across exec.
func TestRunnerRSSExcludesHarness(t *testing.T) {
	ballast := make([]byte, 256<<20)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	r := &runner{timeout: time.Minute}
	u, _, err := r.run(context.Background(), step{sh("true")})
	if err != nil {
		t.Fatal(err)
	}
	if u.MaxRSS > 64<<20 {
		t.Errorf("max RSS of sh -c true = %d MiB with a 256 MiB harness: the harness's memory leaks into the figure", u.MaxRSS>>20)
	}
	_ = ballast[len(ballast)-1]
}
