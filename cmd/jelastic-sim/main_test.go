package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mbackup/mbackup/restore/jelastic"
)

func testPG() string {
	if v := os.Getenv("MBACKUP_TEST_PG"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

func TestUsageErrors(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"help", []string{"--help"}, exitOK, "usage"},
		{"unknown flag", []string{"--bogus"}, exitUsage, "bogus"},
		{"no root", []string{"--pg", testPG(), "--token", "t"}, exitUsage, "--root is required"},
		{"no pg", []string{"--root", root, "--token", "t"}, exitUsage, "--pg is required"},
		{"no token", []string{"--root", root, "--pg", testPG()}, exitUsage, "--token is required"},
		{"login without password", []string{"--root", root, "--pg", testPG(), "--login", "a@b"}, exitUsage, "--login needs a password"},
		{"bad log level", []string{"--root", root, "--pg", testPG(), "--token", "t", "--log-level", "loud"}, exitUsage, "--log-level"},
		{"stray argument", []string{"--root", root, "--pg", testPG(), "--token", "t", "extra"}, exitUsage, "unexpected argument"},
		{"unreachable database", []string{"--root", root, "--pg", "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=2", "--token", "t"}, exitFailure, "not usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			if got := run(context.Background(), tt.args, noEnv, &stderr); got != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.msg) {
				t.Errorf("stderr lacks %q:\n%s", tt.msg, stderr.String())
			}
		})
	}
}

// TestServes starts the real command on a free port with the token from
// the environment and talks to it with the client.
func TestServes(t *testing.T) {
	const token = "cmd-test-token-8d7f6e5a"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	getenv := func(k string) string {
		if k == "JELASTIC_SIM_TOKEN" {
			return token
		}
		return ""
	}
	args := []string{"--listen", "127.0.0.1:0", "--root", t.TempDir(), "--pg", testPG()}
	go func() { done <- run(ctx, args, getenv, &stderr) }()

	urlRE := regexp.MustCompile(`url=(http://\S+/1\.0)`)
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == "" && time.Now().Before(deadline); {
		select {
		case code := <-done:
			t.Fatalf("exited early with %d:\n%s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if m := urlRE.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("no listening line:\n%s", stderr.String())
	}
	c := jelastic.New(base, token)
	if _, err := c.GetUserInfo(ctx); err != nil {
		t.Errorf("GetUserInfo: %v", err)
	}
	if _, err := jelastic.New(base, "wrong").GetUserInfo(ctx); !jelastic.IsAuth(err) {
		t.Errorf("wrong token: %v, want an auth error", err)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d after shutdown; stderr:\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), token) {
		t.Errorf("logs contain the token:\n%s", stderr.String())
	}
}
