// Package faultproxy is a loopback TCP proxy that sits between an S3 client
// and a real S3 server and breaks the connection the way real networks and
// real object stores do: it answers 503 or 500 instead of forwarding,
// resets connections in the middle of an upload or a download, stalls an
// exchange for a while, adds latency, or refuses to serve at all. Tests put
// it in front of versitygw to prove that transient faults are retried and
// persistent ones fail cleanly.
//
// The proxy understands just enough HTTP/1.1 to find where each request
// starts and ends on a connection (the request line, the headers and a
// Content-Length body), so faults are decided per request even on pooled
// keep-alive connections. Responses are forwarded as raw bytes. A request
// with a chunked body turns the rest of its connection into a plain pipe.
//
// It is for tests only: it listens on 127.0.0.1 and trusts its client.
package faultproxy

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The faults a rule can inject.
const (
	// Status answers with an HTTP error (Rule.Status, default 503) and an
	// S3 error document instead of forwarding the request, then closes
	// the connection.
	Status Kind = "status"
	// Reset forwards the request and resets the connection (TCP RST)
	// after Rule.After bytes of the exchange (request body, then
	// response) have passed.
	Reset Kind = "reset"
	// Stall holds the exchange for Rule.Duration after Rule.After bytes,
	// as a congested or half-dead network does; a stall longer than the
	// client's timeouts is a timeout.
	Stall Kind = "stall"
	// Delay adds Rule.Duration of latency before the request is
	// forwarded. It is not counted as an injected fault.
	Delay Kind = "delay"
	// Refuse resets the connection as soon as the request arrives, as a
	// server that went away does.
	Refuse Kind = "refuse"
	// Corrupt flips the bits of the byte that follows Rule.After bytes of
	// the exchange, as a faulty link or middlebox would: the server must
	// notice (a checksum) or the client (authenticated content).
	Corrupt Kind = "corrupt"
)

// Rule describes a fault. Zero fields match everything.
type Rule struct {
	Kind Kind
	// Method matches the request method ("PUT", "GET", ...); "" matches
	// all.
	Method string
	// PathContains matches requests whose path contains it, e.g.
	// "/data/" for packs or "/snapshots/"; "" matches all.
	PathContains string
	// Skip lets this many matching requests through before the rule
	// fires.
	Skip int
	// Times is how often the rule fires; 0 means forever.
	Times int
	// Probability in (0,1] fires the rule at random; 0 means always.
	Probability float64
	// After is the number of bytes of the exchange to forward before a
	// Reset, Stall or Corrupt takes effect.
	After int64
	// Duration is the length of a Stall or Delay.
	Duration time.Duration
	// Status is the HTTP status of a Status fault (default 503).
	Status int
}

type rule struct {
	Rule
	seen, fired int
}

// Stats counts what the proxy did.
type Stats struct {
	Connections int
	Requests    int
	// Injected counts the faults injected, by kind (Delay excluded).
	Injected map[Kind]int
}

// Total returns the number of faults injected.
func (s Stats) Total() int {
	n := 0
	for _, v := range s.Injected {
		n += v
	}
	return n
}

// Proxy forwards connections to a target, injecting faults.
type Proxy struct {
	target string
	ln     net.Listener
	done   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	rng      *rand.Rand
	rules    []*rule
	down     bool
	conns    map[*conn]struct{}
	stats    Stats
	closeErr error
	closed   bool
}

// New starts a proxy on a free loopback port in front of target
// (host:port). seed makes probabilistic rules reproducible.
func New(target string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{
		target: target,
		ln:     ln,
		done:   make(chan struct{}),
		rng:    rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)),
		conns:  make(map[*conn]struct{}),
		stats:  Stats{Injected: make(map[Kind]int)},
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's host:port, to be used as the S3 endpoint.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Add installs a rule. Rules are tried in the order added; the first that
// fires decides the request's fault.
func (p *Proxy) Add(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &rule{Rule: r})
}

// Clear removes all rules and lifts Down: from now on every request passes.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
	p.down = false
}

// Down makes the server unreachable (true): live connections are reset and
// new ones are reset on arrival, until Down(false) or Clear.
func (p *Proxy) Down(down bool) {
	p.mu.Lock()
	p.down = down
	var live []*conn
	if down {
		for c := range p.conns {
			live = append(live, c)
		}
	}
	p.mu.Unlock()
	for _, c := range live {
		c.reset()
	}
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Injected = make(map[Kind]int, len(p.stats.Injected))
	for k, v := range p.stats.Injected {
		s.Injected[k] = v
	}
	return s
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return p.closeErr
	}
	p.closed = true
	close(p.done)
	p.closeErr = p.ln.Close()
	live := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		live = append(live, c)
	}
	p.mu.Unlock()
	for _, c := range live {
		c.close()
	}
	p.wg.Wait()
	return p.closeErr
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			nc.Close()
			return
		}
		p.stats.Connections++
		down := p.down
		if down {
			p.stats.Injected[Refuse]++
		}
		c := &conn{p: p, client: nc}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			if down {
				c.reset()
			} else {
				c.serve()
			}
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// pick counts a request and returns the rule that fires for it, if any.
func (p *Proxy) pick(method, path string) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests++
	if p.down {
		p.stats.Injected[Refuse]++
		return &Rule{Kind: Refuse}
	}
	var delay time.Duration
	for _, r := range p.rules {
		if (r.Method != "" && r.Method != method) || (r.PathContains != "" && !strings.Contains(path, r.PathContains)) {
			continue
		}
		r.seen++
		if r.seen <= r.Skip || (r.Times > 0 && r.fired >= r.Times) {
			continue
		}
		if r.Probability > 0 && p.rng.Float64() >= r.Probability {
			continue
		}
		r.fired++
		if r.Kind == Delay {
			delay += r.Duration
			continue
		}
		p.stats.Injected[r.Kind]++
		fired := r.Rule
		if fired.Kind == Stall && fired.After == 0 {
			fired.Duration += delay
		}
		return &fired
	}
	if delay > 0 {
		return &Rule{Kind: Delay, Duration: delay}
	}
	return nil
}

// sleep waits d or until the proxy closes; it reports whether the full
// time passed.
func (p *Proxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

// conn is one client connection and its upstream connection.
type conn struct {
	p        *Proxy
	client   net.Conn
	upstream net.Conn

	mu     sync.Mutex
	armed  *Rule // a Reset, Stall or Corrupt waiting for its byte budget
	budget int64
	flip   bool // the next byte forwarded is corrupted
	dead   bool
}

func (c *conn) serve() {
	up, err := net.DialTimeout("tcp", c.p.target, 10*time.Second)
	if err != nil {
		c.client.Close()
		return
	}
	c.mu.Lock()
	c.upstream = up
	dead := c.dead
	c.mu.Unlock()
	if dead {
		c.close()
		return
	}
	downDone := make(chan struct{})
	go func() {
		defer close(downDone)
		c.pipe(c.client, c.upstream)
		c.close()
	}()
	c.requests()
	c.close()
	<-downDone
}

// requests reads requests from the client, applies the rules and forwards
// them upstream.
func (c *conn) requests() {
	br := bufio.NewReaderSize(c.client, 64<<10)
	for {
		head, err := readHead(br)
		if err != nil {
			return
		}
		req, err := parseHead(head)
		if err != nil {
			// Not HTTP we understand: forward what we have and pipe.
			if c.write(c.upstream, head) != nil {
				return
			}
			c.pipe(c.upstream, br)
			return
		}
		r := c.p.pick(req.method, req.path)
		if r != nil {
			switch r.Kind {
			case Refuse:
				c.reset()
				return
			case Status:
				c.answer(br, req, r.Status)
				return
			case Delay:
				if !c.p.sleep(r.Duration) {
					return
				}
			case Stall:
				if r.After <= 0 {
					if !c.p.sleep(r.Duration) {
						return
					}
				} else {
					c.arm(r)
				}
			case Reset:
				if r.After <= 0 {
					c.reset()
					return
				}
				c.arm(r)
			case Corrupt:
				c.arm(r)
			}
		}
		if c.write(c.upstream, head) != nil {
			return
		}
		if req.chunked {
			c.pipe(c.upstream, br)
			return
		}
		if req.length > 0 {
			if err := c.copyN(c.upstream, br, req.length); err != nil {
				return
			}
		}
	}
}

type request struct {
	method, path string
	length       int64
	chunked      bool
	expect       bool // Expect: 100-continue: the body follows only on request
}

// readHead reads a request line and headers, up to the empty line.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			return nil, err
		}
		if len(head) > 1<<20 {
			return nil, errors.New("request head too large")
		}
		if bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")) {
			if len(head) == len(line) {
				head = head[:0] // stray CRLF between requests
				continue
			}
			return head, nil
		}
	}
}

func parseHead(head []byte) (request, error) {
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\n")
	parts := strings.Fields(lines[0])
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return request{}, errors.New("not an HTTP/1.x request")
	}
	req := request{method: parts[0], path: parts[1]}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return request{}, fmt.Errorf("bad Content-Length %q", value)
			}
			req.length = n
		case "transfer-encoding":
			req.chunked = !strings.EqualFold(value, "identity")
		case "expect":
			req.expect = strings.EqualFold(value, "100-continue")
		}
	}
	return req, nil
}

// answer replies with an S3 error document without forwarding the request.
func (c *conn) answer(br *bufio.Reader, req request, status int) {
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	if !req.expect && !req.chunked && req.length > 0 {
		if _, err := io.CopyN(io.Discard, br, req.length); err != nil {
			c.close()
			return
		}
	}
	// The documents AWS sends; the messages do not mention the status.
	code, msg := "ServiceUnavailable", "Service is unable to handle request."
	switch status {
	case http.StatusServiceUnavailable:
		code, msg = "SlowDown", "Please reduce your request rate."
	case http.StatusInternalServerError:
		code, msg = "InternalError", "We encountered an internal error. Please try again."
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId></Error>`,
		code, msg, xmlEscape(req.path))
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	b.WriteString("Content-Type: application/xml\r\nConnection: close\r\nServer: faultproxy\r\n")
	if req.method == http.MethodHead {
		b.WriteString("Content-Length: 0\r\n\r\n")
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	_, _ = io.WriteString(c.client, b.String())
	c.close()
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (c *conn) arm(r *Rule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = r
	c.budget = r.After
}

// write forwards p to dst, honouring an armed Reset or Stall: the bytes up
// to the budget go through, then the fault takes effect.
func (c *conn) write(dst net.Conn, p []byte) error {
	for len(p) > 0 {
		c.mu.Lock()
		if c.flip {
			c.flip = false
			c.mu.Unlock()
			if _, err := dst.Write([]byte{^p[0]}); err != nil {
				return err
			}
			p = p[1:]
			continue
		}
		r, budget := c.armed, c.budget
		n := len(p)
		if r != nil && int64(n) > budget {
			n = int(budget)
		}
		if r != nil {
			c.budget -= int64(n)
		}
		trigger := r != nil && c.budget == 0
		if trigger {
			c.armed = nil
		}
		c.mu.Unlock()
		if n > 0 {
			if _, err := dst.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		if trigger {
			switch r.Kind {
			case Reset:
				c.reset()
				return net.ErrClosed
			case Stall:
				if !c.p.sleep(r.Duration) {
					return net.ErrClosed
				}
			case Corrupt:
				c.mu.Lock()
				c.flip = true
				c.mu.Unlock()
			}
		}
	}
	return nil
}

func (c *conn) copyN(dst net.Conn, src io.Reader, n int64) error {
	buf := make([]byte, 32<<10)
	for n > 0 {
		m := int64(len(buf))
		if m > n {
			m = n
		}
		k, err := io.ReadFull(src, buf[:m])
		if k > 0 {
			if werr := c.write(dst, buf[:k]); werr != nil {
				return werr
			}
			n -= int64(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// pipe copies src to dst until either fails.
func (c *conn) pipe(dst net.Conn, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if c.write(dst, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// reset aborts both connections with a TCP RST, so the client sees
// "connection reset by peer" rather than a clean end of stream.
func (c *conn) reset() {
	c.mu.Lock()
	c.dead = true
	up := c.upstream
	c.mu.Unlock()
	for _, nc := range []net.Conn{c.client, up} {
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		if nc != nil {
			nc.Close()
		}
	}
}

func (c *conn) close() {
	c.mu.Lock()
	c.dead = true
	up := c.upstream
	c.mu.Unlock()
	c.client.Close()
	if up != nil {
		up.Close()
	}
}
