package faultproxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbackup/mbackup/engine/backend/faultproxy"
)

// echo is an HTTP server that answers GET /blob/N with N bytes and PUT with
// the SHA-256 of the body, so the tests see whether bytes arrived intact.
func echo(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			h := sha256.New()
			if _, err := io.Copy(h, r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%x", h.Sum(nil))
		default:
			var n int
			fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/blob/"), "%d", &n)
			w.Header().Set("Content-Length", fmt.Sprint(n))
			w.Write(bytes.Repeat([]byte{'x'}, n))
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func start(t *testing.T) (*faultproxy.Proxy, *http.Client) {
	t.Helper()
	p, err := faultproxy.New(echo(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	// Keep-alive on: faults must hit requests on pooled connections too.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, ResponseHeaderTimeout: 2 * time.Second}}
	t.Cleanup(client.CloseIdleConnections)
	return p, client
}

func put(client *http.Client, addr string, body []byte) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/data/ab/pack", bytes.NewReader(body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func get(client *http.Client, addr string, n int) (int, []byte, error) {
	resp, err := client.Get(fmt.Sprintf("http://%s/blob/%d", addr, n))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestPassThroughKeepsBytesIntact(t *testing.T) {
	p, client := start(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	want := fmt.Sprintf("%x", sha256.Sum256(body))
	for i := 0; i < 5; i++ {
		code, got, err := put(client, p.Addr(), body)
		if err != nil || code != 200 || got != want {
			t.Fatalf("put %d: %d %q %v", i, code, got, err)
		}
		code, data, err := get(client, p.Addr(), 300_000)
		if err != nil || code != 200 || len(data) != 300_000 {
			t.Fatalf("get %d: %d %d bytes %v", i, code, len(data), err)
		}
	}
	st := p.Stats()
	if st.Requests != 10 || st.Total() != 0 {
		t.Errorf("stats %+v", st)
	}
	if st.Connections >= 10 {
		t.Errorf("%d connections for 10 requests: keep-alive not exercised", st.Connections)
	}
}

func TestFaults(t *testing.T) {
	body := bytes.Repeat([]byte("z"), 256<<10)
	tests := []struct {
		name  string
		rule  faultproxy.Rule
		check func(t *testing.T, code int, out string, err error)
	}{
		{"503 on PUT", faultproxy.Rule{Kind: faultproxy.Status, Method: "PUT"},
			func(t *testing.T, code int, out string, err error) {
				if err != nil || code != 503 || !strings.Contains(out, "<Code>SlowDown</Code>") {
					t.Errorf("want an S3 SlowDown 503, got %d %q %v", code, out, err)
				}
			}},
		{"500 on PUT", faultproxy.Rule{Kind: faultproxy.Status, Status: 500, PathContains: "/data/"},
			func(t *testing.T, code int, out string, err error) {
				if err != nil || code != 500 || !strings.Contains(out, "InternalError") {
					t.Errorf("want an S3 InternalError 500, got %d %q %v", code, out, err)
				}
			}},
		{"reset mid-upload", faultproxy.Rule{Kind: faultproxy.Reset, After: 100 << 10},
			func(t *testing.T, code int, out string, err error) {
				if err == nil {
					t.Errorf("want a connection error, got %d %q", code, out)
				}
			}},
		{"refuse", faultproxy.Rule{Kind: faultproxy.Refuse},
			func(t *testing.T, code int, out string, err error) {
				if err == nil {
					t.Errorf("want a connection error, got %d %q", code, out)
				}
			}},
		{"stall beyond the client's timeout", faultproxy.Rule{Kind: faultproxy.Stall, Duration: 5 * time.Second},
			func(t *testing.T, code int, out string, err error) {
				if err == nil || !strings.Contains(err.Error(), "timeout") {
					t.Errorf("want a timeout, got %d %q %v", code, out, err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, client := start(t)
			// A first request opens a connection that the fault must hit
			// when it is reused.
			if code, _, err := get(client, p.Addr(), 10); err != nil || code != 200 {
				t.Fatalf("warm-up: %d %v", code, err)
			}
			p.Add(tt.rule)
			code, out, err := put(client, p.Addr(), body)
			tt.check(t, code, out, err)
			if p.Stats().Total() != 1 {
				t.Errorf("injected %v, want 1 fault", p.Stats().Injected)
			}
			// Once cleared, the same client works again.
			p.Clear()
			want := fmt.Sprintf("%x", sha256.Sum256(body))
			if code, got, err := put(client, p.Addr(), body); err != nil || code != 200 || got != want {
				t.Errorf("after clearing: %d %q %v", code, got, err)
			}
		})
	}
}

func TestResetMidDownload(t *testing.T) {
	p, client := start(t)
	p.Add(faultproxy.Rule{Kind: faultproxy.Reset, Method: "GET", After: 64 << 10, Times: 1})
	_, data, err := get(client, p.Addr(), 1<<20)
	if err == nil {
		t.Fatalf("download of %d bytes succeeded through a reset", len(data))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("error (acceptable): %v", err)
	}
	if len(data) >= 1<<20 {
		t.Errorf("got all the data")
	}
	if _, data, err = get(client, p.Addr(), 1<<20); err != nil || len(data) != 1<<20 {
		t.Errorf("second download (rule spent): %d bytes %v", len(data), err)
	}
}

func TestShortStallAndDelayOnlySlowDown(t *testing.T) {
	p, client := start(t)
	p.Add(faultproxy.Rule{Kind: faultproxy.Stall, After: 1000, Duration: 300 * time.Millisecond})
	p.Add(faultproxy.Rule{Kind: faultproxy.Delay, Duration: 100 * time.Millisecond})
	body := bytes.Repeat([]byte("s"), 100_000)
	want := fmt.Sprintf("%x", sha256.Sum256(body))
	if code, got, err := put(client, p.Addr(), body); err != nil || code != 200 || got != want {
		t.Fatalf("stalled put: %d %q %v", code, got, err)
	}
	if st := p.Stats(); st.Injected[faultproxy.Stall] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestProbabilityAndTimes(t *testing.T) {
	p, client := start(t)
	p.Add(faultproxy.Rule{Kind: faultproxy.Status, Probability: 0.5, Times: 5})
	failures := 0
	for i := 0; i < 40; i++ {
		code, _, err := get(client, p.Addr(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if code == 503 {
			failures++
		}
	}
	if failures != 5 || p.Stats().Injected[faultproxy.Status] != 5 {
		t.Errorf("%d failures, stats %+v; want exactly 5", failures, p.Stats())
	}
}

func TestDownResetsLiveAndNewConnections(t *testing.T) {
	p, client := start(t)
	if code, _, err := get(client, p.Addr(), 10); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	p.Down(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr()+"/blob/10", nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("request succeeded while the server is down: %d", resp.StatusCode)
	}
	p.Down(false)
	if code, _, err := get(client, p.Addr(), 10); err != nil || code != 200 {
		t.Fatalf("after Down(false): %d %v", code, err)
	}
}

func TestCloseEndsStalledExchanges(t *testing.T) {
	p, _ := start(t)
	p.Add(faultproxy.Rule{Kind: faultproxy.Stall, Duration: time.Hour})
	done := make(chan error, 1)
	go func() {
		_, _, err := get(&http.Client{}, p.Addr(), 10)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	p.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("stalled request succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a stalled exchange")
	}
}
