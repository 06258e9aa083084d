package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Webhook POSTs each event as JSON: the Event's fields plus "text" (the
// subject, which chat services such as Slack and Mattermost display) and
// "message" (the plain-text body).
type Webhook struct {
	URL     string            // secret: may carry a token
	Headers map[string]string // values are secrets
	Client  *http.Client      // nil: a client with a 20 s timeout
	// Attempts is how often a failed delivery (network error, 5xx, 429)
	// is tried; 0 means 3.
	Attempts int
	// Backoff is the pause before the second attempt, doubled after each;
	// 0 means 1 s.
	Backoff time.Duration
}

// Name implements Sender.
func (w *Webhook) Name() string { return "webhook" }

type webhookBody struct {
	Event
	Text    string `json:"text"`
	Message string `json:"message"`
}

// Send implements Sender.
func (w *Webhook) Send(ctx context.Context, e Event) error {
	body, err := json.Marshal(webhookBody{Event: e, Text: e.Subject(), Message: e.Body(nil)})
	if err != nil {
		return err
	}
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	attempts, backoff := w.Attempts, w.Backoff
	if attempts <= 0 {
		attempts = 3
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	for i := 1; ; i++ {
		retry, err := w.post(ctx, client, body)
		if err == nil || !retry || i == attempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// post makes one delivery; retry says whether another attempt may help.
func (w *Webhook) post(ctx context.Context, client *http.Client, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("bad webhook URL") // the URL is a secret: do not quote it
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mbackup")
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error quotes the URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return ctx.Err() == nil, fmt.Errorf("POST: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
		fmt.Errorf("POST: HTTP %s", resp.Status)
}
