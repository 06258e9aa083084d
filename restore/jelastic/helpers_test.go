package jelastic

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const testToken = "pat-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

// recorded is one request a test server saw.
type recorded struct {
	Method      string
	Path        string
	RawQuery    string
	ContentType string
	Form        url.Values // body parameters only
}

// fixtureServer answers each API path with a fixture file from testdata and
// records the requests.
type fixtureServer struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]string
	reqs   []recorded
}

func newFixtureServer(t *testing.T, routes map[string]string) *fixtureServer {
	t.Helper()
	fs := &fixtureServer{routes: routes}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type")}
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		rec.Form = r.PostForm
		fs.mu.Lock()
		fs.reqs = append(fs.reqs, rec)
		name, ok := fs.routes[r.URL.Path]
		fs.mu.Unlock()
		if !ok {
			http.Error(w, "no fixture for "+r.URL.Path, http.StatusNotFound)
			return
		}
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Errorf("read fixture: %v", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_, _ = w.Write(data)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fixtureServer) requests() []recorded {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]recorded(nil), fs.reqs...)
}

func (fs *fixtureServer) client(opts ...Option) *Client {
	return New(fs.URL+"/1.0", testToken, append([]Option{WithRetry(fastRetry(3))}, opts...)...)
}

// fastRetry keeps retry tests quick; the policy shape is what is tested.
func fastRetry(n int) RetryPolicy {
	return RetryPolicy{MaxAttempts: n, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}
}
