package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a versitygw server started by Launch.
type Process struct {
	Server
	Root string // the folder served: one subfolder per bucket

	cmd    *exec.Cmd
	stderr *tail
	once   sync.Once
}

// Launch starts versitygw on a free loopback port with fresh credentials,
// serving root, and waits until it answers. Programs that need a real S3
// server of their own (the soak and bench scripts) use it; tests use
// Start. The server runs in its own process group and dies with its
// parent; Stop ends it.
func Launch(ctx context.Context, root string) (*Process, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	p := &Process{
		Server: Server{Endpoint: addr, AccessKey: "mbackup", SecretKey: hex.EncodeToString(secret[:])},
		Root:   root,
		stderr: &tail{max: 4096},
	}
	// Keep-alive, as S3 services have it (versitygw's default closes
	// every connection after one request); no log line per request.
	p.cmd = exec.Command(bin, "--port", addr, "--keep-alive", "--quiet", "posix", root)
	p.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+p.AccessKey, "ROOT_SECRET_KEY="+p.SecretKey)
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	if err := waitReady(ctx, addr, 15*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("versitygw on %s did not come up: %v: %s", addr, err, strings.TrimSpace(p.stderr.String()))
	}
	return p, nil
}

// Stop ends the server: politely, then after 5 seconds by force.
func (p *Process) Stop() {
	p.once.Do(func() {
		pid := p.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-done
		}
	})
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
