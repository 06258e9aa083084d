package jelastic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// dropConnection as a status makes rawServer close the connection without
// answering.
const dropConnection = -1

// rawServer answers hit n (1-based) with whatever respond returns.
type rawServer struct {
	*httptest.Server
	n     atomic.Int64
	mu    sync.Mutex
	forms []string // raw bodies seen
}

func newRawServer(t *testing.T, respond func(hit int) (status int, body string)) *rawServer {
	t.Helper()
	rs := &rawServer{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit := int(rs.n.Add(1))
		b, _ := io.ReadAll(r.Body)
		rs.mu.Lock()
		rs.forms = append(rs.forms, string(b))
		rs.mu.Unlock()
		status, body := respond(hit)
		if status == dropConnection {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *rawServer) hits() int { return int(rs.n.Load()) }

func (rs *rawServer) client(opts ...Option) *Client {
	return New(rs.URL+"/1.0", testToken, append([]Option{WithRetry(fastRetry(4))}, opts...)...)
}

const okEnvInfo = `{"result":0,"env":{"envName":"client-x","status":1},"nodes":[]}`

func TestRetry(t *testing.T) {
	tests := []struct {
		name     string
		respond  func(hit int) (int, string)
		call     func(c *Client) error
		wantHits int
		wantErr  func(error) bool // nil: want success
	}{
		{
			name: "dropped connections then success (idempotent read)",
			respond: func(hit int) (int, string) {
				if hit <= 2 {
					return dropConnection, ""
				}
				return 200, okEnvInfo
			},
			call:     getEnvInfo,
			wantHits: 3,
		},
		{
			name: "5xx then success",
			respond: func(hit int) (int, string) {
				if hit <= 2 {
					return 503, "<html>maintenance</html>"
				}
				return 200, okEnvInfo
			},
			call:     getEnvInfo,
			wantHits: 3,
		},
		{
			name:     "API error is never retried",
			respond:  func(int) (int, string) { return 200, `{"result":702,"error":"user is not authenticated"}` },
			call:     getEnvInfo,
			wantHits: 1,
			wantErr:  IsAuth,
		},
		{
			name:     "4xx is not retried",
			respond:  func(int) (int, string) { return 404, "not found" },
			call:     getEnvInfo,
			wantHits: 1,
			wantErr:  IsTransport,
		},
		{
			name:     "attempts are bounded",
			respond:  func(int) (int, string) { return 502, "bad gateway" },
			call:     getEnvInfo,
			wantHits: 4,
			wantErr: func(err error) bool {
				var te *TransportError
				return errors.As(err, &te) && te.StatusCode == 502
			},
		},
		{
			name: "a dropped clone is not sent again",
			respond: func(hit int) (int, string) {
				if hit == 1 {
					return dropConnection, ""
				}
				return 200, okEnvInfo
			},
			call: func(c *Client) error {
				_, err := c.CloneEnv(context.Background(), "client-x", "client-x-staging")
				return err
			},
			wantHits: 1,
			wantErr:  IsTransport,
		},
		{
			name:    "a 5xx exec is not sent again",
			respond: func(int) (int, string) { return 500, "oops" },
			call: func(c *Client) error {
				_, err := c.ExecCmdByGroup(context.Background(), "e", "cp", "rm -rf cache")
				return err
			},
			wantHits: 1,
			wantErr:  IsTransport,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, tt.respond)
			err := tt.call(srv.client())
			if tt.wantErr == nil && err != nil {
				t.Fatalf("want success, got %v", err)
			}
			if tt.wantErr != nil && (err == nil || !tt.wantErr(err)) {
				t.Fatalf("unexpected error %v (%T)", err, err)
			}
			if srv.hits() != tt.wantHits {
				t.Errorf("server saw %d attempts, want %d", srv.hits(), tt.wantHits)
			}
		})
	}
}

func getEnvInfo(c *Client) error {
	_, err := c.GetEnvInfo(context.Background(), "client-x")
	return err
}

// refusingDialer fails the first n dials as a refused connection would.
type refusingDialer struct {
	n     int
	dials atomic.Int64
}

func (d *refusingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if int(d.dials.Add(1)) <= d.n {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: syscall.ECONNREFUSED.Error(), Addr: addr}}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func TestRetryRefusedConnectionEvenForClone(t *testing.T) {
	srv := newRawServer(t, func(int) (int, string) { return 200, okEnvInfo })
	d := &refusingDialer{n: 2}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	_, err := srv.client(WithHTTPClient(hc)).CloneEnv(context.Background(), "client-x", "client-x-staging")
	if err != nil {
		t.Fatalf("CloneEnv after refused dials: %v", err)
	}
	if got := d.dials.Load(); got != 3 {
		t.Errorf("%d dials, want 3", got)
	}
	if srv.hits() != 1 {
		t.Errorf("server saw %d clone requests, want exactly 1", srv.hits())
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := newRawServer(t, func(int) (int, string) {
		cancel()
		return 503, "busy"
	})
	c := New(srv.URL+"/1.0", testToken, WithRetry(RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Hour, MaxBackoff: time.Hour}))
	_, err := c.GetEnvInfo(ctx, "client-x")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if srv.hits() != 1 {
		t.Errorf("%d attempts after cancellation, want 1", srv.hits())
	}
}

func TestBackoffIsCappedAndGrows(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for n := 1; n <= 12; n++ {
		base := min(p.InitialBackoff<<(n-1), p.MaxBackoff)
		for range 50 {
			d := p.backoff(n)
			if d < base/2 || d > base {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, base/2, base)
			}
		}
	}
	if (RetryPolicy{MaxAttempts: 0}).attempts() != 1 {
		t.Error("MaxAttempts 0 must mean a single attempt")
	}
}

// TestTokenNeverInErrorsOrLogs makes servers echo the request (which holds
// the token and a password) back in every way an error can carry text.
func TestTokenNeverInErrorsOrLogs(t *testing.T) {
	const password = "delete-confirm-Pa55"
	echo := func(status int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(status)
			_, _ = w.Write(b) // form-encoded, as a proxy error page might
		}
	}
	scenarios := map[string]http.HandlerFunc{
		"5xx echo": echo(500),
		"200 echo": echo(200),
		"4xx echo": echo(400),
		"api echo": func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			_, _ = io.WriteString(w, `{"result":3,"error":"invalid parameter [session=`+r.PostForm.Get("session")+`] password `+r.PostForm.Get("password")+`"}`)
		},
		"drop": func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		},
	}
	for name, h := range scenarios {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := New(srv.URL+"/1.0", testToken, WithRetry(fastRetry(2)), WithLogger(logger))
			var errs []error
			_, err := c.GetEnvInfo(context.Background(), "client-x")
			errs = append(errs, err)
			errs = append(errs, c.DeleteEnv(context.Background(), "client-x", password))
			for _, err := range errs {
				if err == nil {
					t.Fatal("want an error")
				}
				for e := err; e != nil; e = errors.Unwrap(e) {
					if s := e.Error(); strings.Contains(s, testToken) || strings.Contains(s, password) {
						t.Errorf("error text leaks a secret: %q", s)
					}
				}
			}
			if s := logs.String(); strings.Contains(s, testToken) || strings.Contains(s, password) {
				t.Errorf("logs leak a secret:\n%s", s)
			}
		})
	}
	t.Run("unreachable host", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = New("http://"+addr+"/1.0", testToken, WithRetry(fastRetry(2))).GetEnvInfo(context.Background(), "x")
		if err == nil || !IsTransport(err) {
			t.Fatalf("err = %v, want a transport error", err)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("error %q leaks the token", err)
		}
	})
}
