package notify

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mbackup/mbackup/cmd/internal/config"
)

var failure = Event{
	Kind: Failure, Job: "backup", Env: "client-x", Time: time.Date(2026, 11, 28, 2, 5, 0, 0, time.UTC),
	Error: "database: connection refused", Failures: 3, Host: "backup1",
	LastSuccess: time.Date(2026, 11, 27, 2, 4, 0, 0, time.UTC),
}

func TestWebhook(t *testing.T) {
	const token = "s3cr3t-token"
	var (
		mu    sync.Mutex
		got   []map[string]any
		auths []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, m)
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer srv.Close()

	w := &Webhook{URL: srv.URL + "/hook/" + token, Headers: map[string]string{"Authorization": "Bearer " + token}}
	if err := w.Send(context.Background(), failure); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	m := got[0]
	for k, want := range map[string]any{
		"event": "failure", "job": "backup", "env": "client-x", "error": "database: connection refused",
		"consecutive_failures": 3.0, "host": "backup1", "time": "2026-11-28T02:05:00Z",
		"last_success": "2026-11-27T02:04:00Z", "text": "[mbackup] FAILED: backup of client-x on backup1",
	} {
		if m[k] != want {
			t.Errorf("body[%q] = %v, want %v", k, m[k], want)
		}
	}
	if msg, _ := m["message"].(string); !strings.Contains(msg, "connection refused") {
		t.Errorf("message %q lacks the error", msg)
	}
	if auths[0] != "Bearer "+token {
		t.Errorf("Authorization header = %q", auths[0])
	}
}

func TestWebhookRetriesAndRedacts(t *testing.T) {
	const token = "tok-123456"
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL + "/" + token, Backoff: time.Millisecond}
	if err := w.Send(context.Background(), failure); err != nil {
		t.Fatalf("Send after two 503s: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}

	// A client error is not retried.
	calls.Store(0)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer bad.Close()
	err := (&Webhook{URL: bad.URL + "/" + token, Backoff: time.Millisecond}).Send(context.Background(), failure)
	if err == nil || !strings.Contains(err.Error(), "403") || calls.Load() != 1 {
		t.Errorf("403: err = %v after %d calls; want one call and an error naming 403", err, calls.Load())
	}

	// Network errors must not quote the URL (it carries the token).
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	err = (&Webhook{URL: "http://" + addr + "/" + token, Attempts: 1}).Send(context.Background(), failure)
	if err == nil {
		t.Fatal("POST to a closed port succeeded")
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error leaks the URL token: %v", err)
	}
}

func TestNotifierFiltersAndJoins(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mbackup.yaml")
	yaml := "repository: {url: " + dir + "/repo, password_env: PW}\n" +
		"notify:\n  on: [failure]\n  webhook: {url: " + srv.URL + "/x, headers: {X-Token: abc}}\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Enabled(Failure) || n.Enabled(Recovery) {
		t.Errorf("Enabled(failure)=%v Enabled(recovery)=%v; want true, false", n.Enabled(Failure), n.Enabled(Recovery))
	}
	if d, err := n.Notify(context.Background(), Event{Kind: Recovery, Job: "backup", Env: "a"}); d != 0 || err != nil || calls.Load() != 0 {
		t.Errorf("recovery with on: [failure]: delivered %d, err %v, %d calls; want none", d, err, calls.Load())
	}
	if d, err := n.Notify(context.Background(), failure); d != 1 || err != nil || calls.Load() != 1 {
		t.Errorf("failure: delivered %d, err %v, %d calls; want 1", d, err, calls.Load())
	}
	var zero *Notifier
	if d, err := zero.Notify(context.Background(), failure); d != 0 || err != nil {
		t.Errorf("nil notifier: %d, %v", d, err)
	}
}

func TestEmail(t *testing.T) {
	cert, pool := testCert(t)
	for _, tc := range []struct {
		name      string
		serverTLS bool // server offers STARTTLS
		startTLS  bool
		user      string
		wantErr   string
		wantTLS   bool
	}{
		{name: "starttls+auth", serverTLS: true, startTLS: true, user: "backup", wantTLS: true},
		{name: "plain local relay", serverTLS: false, startTLS: false},
		{name: "starttls required but not offered", serverTLS: false, startTLS: true, wantErr: "does not offer STARTTLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeSMTP(t, cert, tc.serverTLS)
			host, port, _ := net.SplitHostPort(srv.addr)
			m := &Email{
				Host: host, Port: mustAtoi(t, port), From: "mbackup <backup@example.ch>",
				To: []string{"ops@example.ch", "Oncall <oncall@example.ch>"}, StartTLS: tc.startTLS,
				TLS: &tls.Config{RootCAs: pool}, Loc: time.UTC,
			}
			if tc.user != "" {
				m.Username, m.Password = tc.user, "smtp-pass"
			}
			err := m.Send(context.Background(), failure)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if len(srv.mails()) != 0 {
					t.Fatal("a message was sent anyway")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mails := srv.mails()
			if len(mails) != 1 {
				t.Fatalf("%d mails, want 1", len(mails))
			}
			got := mails[0]
			if got.from != "backup@example.ch" || strings.Join(got.to, ",") != "ops@example.ch,oncall@example.ch" {
				t.Errorf("envelope from %q to %v", got.from, got.to)
			}
			if got.tls != tc.wantTLS {
				t.Errorf("message sent over TLS = %v, want %v", got.tls, tc.wantTLS)
			}
			wantAuth := ""
			if tc.user != "" {
				wantAuth = "\x00backup\x00smtp-pass"
			}
			if got.auth != wantAuth {
				t.Errorf("AUTH PLAIN = %q, want %q", got.auth, wantAuth)
			}
			tp := textproto.NewReader(bufio.NewReader(strings.NewReader(got.data)))
			hdr, err := tp.ReadMIMEHeader()
			if err != nil {
				t.Fatal(err)
			}
			if s := hdr.Get("Subject"); s != "[mbackup] FAILED: backup of client-x on backup1" {
				t.Errorf("Subject = %q", s)
			}
			body, _ := io.ReadAll(tp.R)
			if !strings.Contains(string(body), "Error: database: connection refused") ||
				!strings.Contains(string(body), "Last success: 2026-11-27 02:04:00 UTC") {
				t.Errorf("body:\n%s", body)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// testCert makes a self-signed certificate for 127.0.0.1.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// fakeSMTP is a minimal SMTP server: EHLO, STARTTLS, AUTH PLAIN, MAIL,
// RCPT, DATA, QUIT. It records each message.
type fakeSMTP struct {
	addr string
	cert tls.Certificate
	tls  bool

	mu  sync.Mutex
	got []fakeMail
}

type fakeMail struct {
	from, auth, data string
	to               []string
	tls              bool
}

func newFakeSMTP(t *testing.T, cert tls.Certificate, offerTLS bool) *fakeSMTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSMTP{addr: l.Addr().String(), cert: cert, tls: offerTLS}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c) }()
		}
	}()
	return s
}

func (s *fakeSMTP) mails() []fakeMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fakeMail(nil), s.got...)
}

func (s *fakeSMTP) serve(conn net.Conn) {
	defer func() { conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	var (
		cur    fakeMail
		secure bool
	)
	_ = tp.PrintfLine("220 fake ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			lines := []string{"fake", "8BITMIME", "AUTH PLAIN"}
			if s.tls && !secure {
				lines = append(lines, "STARTTLS")
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				_ = tp.PrintfLine("250%s%s", sep, l)
			}
		case "STARTTLS":
			_ = tp.PrintfLine("220 go ahead")
			tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{s.cert}})
			if tc.Handshake() != nil {
				return
			}
			conn, secure = tc, true
			tp = textproto.NewConn(conn)
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			raw, err := base64.StdEncoding.DecodeString(resp)
			if mech != "PLAIN" || err != nil {
				_ = tp.PrintfLine("504 unsupported")
				continue
			}
			cur.auth = string(raw)
			_ = tp.PrintfLine("235 ok")
		case "MAIL":
			cur.from = strings.Trim(strings.TrimPrefix(arg, "FROM:"), "<>")
			if i := strings.Index(cur.from, ">"); i >= 0 {
				cur.from = cur.from[:i]
			}
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			cur.to = append(cur.to, strings.Trim(strings.TrimPrefix(arg, "TO:"), "<>"))
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go on")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			cur.data, cur.tls = string(data), secure
			s.mu.Lock()
			s.got = append(s.got, cur)
			s.mu.Unlock()
			cur = fakeMail{auth: cur.auth}
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 not implemented")
		}
	}
}
