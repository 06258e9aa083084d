package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// versityGW is a versitygw process serving a folder over S3 on loopback.
type versityGW struct {
	addr, access, secret string
	cmd                  *exec.Cmd
}

// startVersityGW starts versitygw on a free loopback port with fresh
// credentials, serving dir.
func startVersityGW(ctx context.Context, dir string) (*versityGW, error) {
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, _ := os.UserHomeDir()
			gopath = filepath.Join(home, "go")
		}
		bin = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%w: the S3 server versitygw is not installed: run `make tools`, or set MBACKUP_TEST_S3_ENDPOINT", errUsage)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	var b [12]byte
	_, _ = rand.Read(b[:])
	gw := &versityGW{addr: addr, access: "soak", secret: "soak-" + hex.EncodeToString(b[:])}
	gw.cmd = exec.Command(bin, "--port", addr, "posix", dir)
	gw.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+gw.access, "ROOT_SECRET_KEY="+gw.secret)
	var stderr bytes.Buffer
	gw.cmd.Stderr = &stderr
	if err := gw.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return gw, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			gw.stop()
			return nil, fmt.Errorf("versitygw on %s did not come up: %v: %s", addr, err, strings.TrimSpace(stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *versityGW) stop() {
	_ = g.cmd.Process.Kill()
	_ = g.cmd.Wait()
}
