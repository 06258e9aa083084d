package jelastic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxResponseBytes bounds how much of a response body is read. ExecCmd
// output is the only large payload; the platform caps it well below this.
const maxResponseBytes = 64 << 20

// Client calls one platform's API with one token. It is safe for concurrent
// use; it holds no state that calls change.
type Client struct {
	base    string // e.g. "https://app.example-hoster.ch/1.0", no trailing slash
	baseErr error  // set when baseURL cannot be used; reported by every call
	token   string
	http    *http.Client
	retry   RetryPolicy
	log     *slog.Logger
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client. Its Timeout, if any, bounds every
// attempt; long ExecCmd calls need a generous one or none (use the context).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithRetry sets the retry policy for transport failures.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) { c.retry = p }
}

// WithLogger sets the logger for call and retry records (debug and warn
// levels). The token and passwords are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// New returns a client for the API at baseURL (for example
// "https://app.example-hoster.ch/1.0") authenticating with token, a
// personal access token or a signin session. A bad baseURL is reported by
// the first call.
func New(baseURL, token string, opts ...Option) *Client {
	c := &Client{
		token: token,
		http:  &http.Client{},
		retry: DefaultRetryPolicy(),
		log:   slog.New(slog.DiscardHandler),
	}
	c.base, c.baseErr = normalizeBase(baseURL)
	for _, o := range opts {
		o(c)
	}
	return c
}

func normalizeBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Parse errors quote the input; the base URL holds no secret
		// by contract, but keep the message generic anyway.
		return "", errors.New("invalid jelastic API URL: cannot parse it")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("invalid jelastic API URL %q: want http(s)://HOST/1.0", redactURL(u))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid jelastic API URL %q: it must not have a query or fragment", redactURL(u))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Request is one API call for Do.
type Request struct {
	// Method names the API method as group.service.Method, for example
	// "environment.control.GetEnvInfo". It is sent lower-cased as
	// group/service/rest/method.
	Method string
	// Params are the method's parameters; Do adds session.
	Params url.Values
	// Idempotent marks calls that may be sent again after a failure that
	// may have reached the server (reset connection, timeout, 5xx). Other
	// calls are repeated only when the request provably never left
	// (connection refused, DNS failure).
	Idempotent bool
}

// Do sends req and decodes the response payload into out (which may be
// nil). A result != 0 is returned as *Error; everything else that goes
// wrong as *TransportError.
func (c *Client) Do(ctx context.Context, req Request, out any) error {
	env, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := env.decodePayload(out); err != nil {
		return &TransportError{Method: req.Method, URL: c.redactedEndpoint(req.Method), Err: fmt.Errorf("decode %s response: %w", req.Method, err)}
	}
	return nil
}

func (c *Client) do(ctx context.Context, req Request) (*envelope, error) {
	if c.baseErr != nil {
		return nil, fmt.Errorf("jelastic %s: %w", req.Method, c.baseErr)
	}
	path, err := methodPath(req.Method)
	if err != nil {
		return nil, err
	}
	endpoint := c.base + "/" + path
	form := url.Values{}
	for k, v := range req.Params {
		form[k] = append([]string(nil), v...)
	}
	if c.token != "" && form.Get("session") == "" {
		form.Set("session", c.token)
	}
	body := form.Encode()
	envName := firstNonEmpty(req.Params.Get("envName"), req.Params.Get("srcEnvName"))
	secrets := c.secrets(req.Params)

	attempts := c.retry.attempts()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		env, class, terr := c.attempt(ctx, req.Method, endpoint, body, secrets)
		result := -1 // no envelope
		if terr == nil {
			result = env.Result
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "jelastic call",
			slog.String("method", req.Method), slog.String("env", envName),
			slog.Int("attempt", attempt), slog.Int("result", result),
			slog.Duration("duration", time.Since(start)))
		if terr == nil {
			if env.Result != CodeOK {
				return nil, apiError(req.Method, envName, env, secrets)
			}
			return env, nil
		}
		if err := ctx.Err(); err != nil {
			// The caller gave up; whatever the server answered meanwhile
			// is not the news.
			return nil, &TransportError{Method: req.Method, URL: terr.URL, Err: err}
		}
		retry := class == retryIfUnsent || class == retryIfIdempotent && req.Idempotent
		if !retry || attempt >= attempts {
			return nil, terr
		}
		wait := c.retry.backoff(attempt)
		c.log.LogAttrs(ctx, slog.LevelWarn, "jelastic transport error, retrying",
			slog.String("method", req.Method), slog.String("env", envName),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("error", terr.Error()))
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, &TransportError{Method: req.Method, URL: terr.URL, Err: err}
		}
	}
}

// attempt sends the request once.
func (c *Client) attempt(ctx context.Context, method, endpoint, body string, secrets []string) (*envelope, retryClass, *TransportError) {
	te := &TransportError{Method: method, URL: c.redactedEndpoint(method)}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		te.Err = redactErr(err, secrets)
		return nil, noRetry, te
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(hreq)
	if err != nil {
		class := classify(ctx, err, 0)
		if ctx.Err() != nil {
			te.Err = ctx.Err()
		} else {
			te.Err = redactErr(err, secrets)
		}
		return nil, class, te
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		te.StatusCode = resp.StatusCode
		te.Err = redactErr(fmt.Errorf("read response: %w", err), secrets)
		return nil, classify(ctx, err, 0), te
	}
	if resp.StatusCode != http.StatusOK {
		te.StatusCode = resp.StatusCode
		te.Snippet = snippet(data, secrets)
		return nil, classify(ctx, nil, resp.StatusCode), te
	}
	if len(data) > maxResponseBytes {
		te.Err = fmt.Errorf("response larger than %d bytes", maxResponseBytes)
		return nil, noRetry, te
	}
	env, err := decodeEnvelope(data)
	if err != nil {
		te.StatusCode = resp.StatusCode
		te.Err = redactErr(err, secrets)
		te.Snippet = snippet(data, secrets)
		return nil, noRetry, te
	}
	return env, noRetry, nil
}

// apiError builds the *Error for a result != 0. The platform may echo
// parameters in its text, so secrets are removed from it.
func apiError(method, envName string, env *envelope, secrets []string) *Error {
	e := &Error{
		Code:    env.Result,
		Message: redactString(env.Error, secrets),
		Method:  method,
		Env:     envName,
		Reason:  env.Reason,
		Source:  env.Source,
	}
	if raw, ok := lookupFold(env.Payload, "responses"); ok {
		var rs []wireCmdResult
		if json.Unmarshal(raw, &rs) == nil {
			for i := range rs {
				r := rs[i].cmdResult()
				r.Error = redactString(r.Error, secrets)
				r.ErrOut = redactString(r.ErrOut, secrets)
				r.Out = redactString(r.Out, secrets)
				e.Results = append(e.Results, r)
			}
		}
	}
	return e
}

// methodPath turns "environment.control.GetEnvInfo" into
// "environment/control/rest/getenvinfo".
func methodPath(method string) (string, error) {
	parts := strings.Split(method, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("jelastic: invalid method name %q: want group.service.Method", method)
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "/?#% ") {
			return "", fmt.Errorf("jelastic: invalid method name %q: want group.service.Method", method)
		}
	}
	return strings.ToLower(parts[0] + "/" + parts[1] + "/rest/" + parts[2]), nil
}

func (c *Client) redactedEndpoint(method string) string {
	p, err := methodPath(method)
	if err != nil {
		return c.base
	}
	u, err := url.Parse(c.base + "/" + p)
	if err != nil {
		return c.base
	}
	return redactURL(u)
}

// secrets lists the strings that must never leave this package: the token
// and any password parameter.
func (c *Client) secrets(params url.Values) []string {
	var s []string
	if c.token != "" {
		s = append(s, c.token)
	}
	for k, vs := range params {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "session") {
			for _, v := range vs {
				if v != "" {
					s = append(s, v)
				}
			}
		}
	}
	return s
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
