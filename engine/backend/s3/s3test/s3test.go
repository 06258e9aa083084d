// Package s3test gives tests a real S3 server: the one named by the
// environment (MBACKUP_TEST_S3_ENDPOINT, MBACKUP_TEST_S3_ACCESS_KEY,
// MBACKUP_TEST_S3_SECRET_KEY; `make test` starts one), or else a versitygw
// process started for the test. It never falls back to a fake. Launch
// starts versitygw for programs (the soak and bench scripts).
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine/backend/s3"
)

// Server is a running S3 server.
type Server struct {
	Endpoint  string // host:port, plain http
	AccessKey string
	SecretKey string
}

// Start returns a server for the test, starting versitygw when the
// environment names none. The process is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if ep := os.Getenv("MBACKUP_TEST_S3_ENDPOINT"); ep != "" {
		return &Server{Endpoint: ep, AccessKey: os.Getenv("MBACKUP_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("MBACKUP_TEST_S3_SECRET_KEY")}
	}
	p, err := Launch(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &p.Server
}

// Binary finds the versitygw executable: in PATH or in $GOPATH/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", errors.New("the S3 server versitygw is not installed: run `make tools` (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
}

func waitReady(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Config returns backend settings for a fresh, empty bucket on s.
func (s *Server) Config(t testing.TB) s3.Config {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg := s3.Config{Endpoint: s.Endpoint, Bucket: "mbackup-test-" + hex.EncodeToString(b[:]), Prefix: "repo", AccessKey: s.AccessKey, SecretKey: s.SecretKey}
	be, err := s3.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.CreateBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Backend returns a backend on a fresh bucket.
func (s *Server) Backend(t testing.TB) *s3.Backend {
	t.Helper()
	be, err := s3.Open(s.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	return be
}
