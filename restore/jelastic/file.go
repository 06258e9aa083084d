package jelastic

import (
	"context"
	"net/url"
)

// ReadFile returns the text of a file on the master node of a node group.
// The platform's File.Read is text only; there is no binary download.
func (c *Client) ReadFile(ctx context.Context, env, group, path string) (string, error) {
	if err := requireEnv("ReadFile", env); err != nil {
		return "", err
	}
	var w struct {
		Body flexString `json:"body"`
	}
	err := c.Do(ctx, Request{
		Method:     "environment.file.Read",
		Params:     url.Values{"envName": {env}, "nodeGroup": {group}, "path": {path}},
		Idempotent: true,
	}, &w)
	if err != nil {
		return "", err
	}
	return string(w.Body), nil
}

// WriteFile replaces a file's content on the master node of a node group.
func (c *Client) WriteFile(ctx context.Context, env, group, path, body string) error {
	if err := requireEnv("WriteFile", env); err != nil {
		return err
	}
	return c.Do(ctx, Request{
		Method:     "environment.file.Write",
		Params:     url.Values{"envName": {env}, "nodeGroup": {group}, "path": {path}, "body": {body}, "masterOnly": {"true"}},
		Idempotent: true,
	}, nil)
}
