package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/backend/s3"
	"github.com/mbackup/mbackup/engine/backend/s3/s3test"
)

func TestBackendContract(t *testing.T) {
	srv := s3test.Start(t)
	be := srv.Backend(t)
	ctx := context.Background()
	h := backend.Handle{Type: backend.PackFile, Name: "ab" + strings.Repeat("0", 62)}
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := backend.SaveBytes(ctx, be, h, data); err != nil {
		t.Fatal(err)
	}
	got, err := backend.ReadAt(ctx, be, h, 5, 20)
	if err != nil || string(got) != "56789012345678901234" {
		t.Fatalf("ranged read: %q %v", got, err)
	}
	all, err := backend.ReadAll(ctx, be, h)
	if err != nil || !bytes.Equal(all, data) {
		t.Fatalf("full read: %d bytes, %v", len(all), err)
	}
	fi, err := be.Stat(ctx, h)
	if err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("stat: %+v %v", fi, err)
	}
	var names []string
	if err := be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil || len(names) != 1 || names[0] != h.Name {
		t.Fatalf("list: %v %v", names, err)
	}
	if err := be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Stat(ctx, h); !backend.IsNotExist(err) {
		t.Fatalf("stat after remove: %v", err)
	}
	err = be.Load(ctx, h, 0, 0, func(io.Reader) error { return nil })
	if !backend.IsNotExist(err) {
		t.Fatalf("load missing: %v", err)
	}
	if err := be.Remove(ctx, h); err != nil {
		t.Fatalf("removing a missing object: %v", err)
	}
}

func TestBadCredentialsArePermanent(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(t)
	cfg.SecretKey = "wrong-secret"
	be, err := s3.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = backend.SaveBytes(context.Background(), be, backend.Handle{Type: backend.KeyFile, Name: "k"}, []byte("x"))
	if err == nil || !backend.IsPermanent(err) {
		t.Fatalf("wrong secret: %v (permanent=%v)", err, backend.IsPermanent(err))
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func TestMissingBucket(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(t)
	cfg.Bucket = "does-not-exist-mbackup"
	be, _ := s3.Open(cfg)
	err := be.CheckBucket(context.Background())
	if err == nil || !backend.IsPermanent(err) || !strings.Contains(err.Error(), "does-not-exist-mbackup") {
		t.Fatalf("missing bucket: %v", err)
	}
	_, err = be.Stat(context.Background(), backend.Handle{Type: backend.ConfigFile})
	if err == nil || backend.IsNotExist(err) && !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("stat in missing bucket: %v", err)
	}
}
