package jelastic

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// MaxEnvNameLen is the longest environment name CloneEnv accepts; the
// platform refuses longer clone names.
const MaxEnvNameLen = 33

// GetEnvInfo returns an environment's status and nodes. A missing
// environment is an *Error for which IsNotExist is true.
func (c *Client) GetEnvInfo(ctx context.Context, env string) (*EnvInfo, error) {
	if err := requireEnv("GetEnvInfo", env); err != nil {
		return nil, err
	}
	var w wireEnvInfo
	err := c.Do(ctx, Request{
		Method:     "environment.control.GetEnvInfo",
		Params:     url.Values{"envName": {env}},
		Idempotent: true,
	}, &w)
	if err != nil {
		return nil, err
	}
	if w.Env == nil {
		return nil, fmt.Errorf("jelastic environment.control.GetEnvInfo env %q: response has no env object", env)
	}
	return w.envInfo(), nil
}

// GetEnvs returns every environment the token can see.
func (c *Client) GetEnvs(ctx context.Context) ([]EnvInfo, error) {
	var w struct {
		Infos []wireEnvInfo `json:"infos"`
	}
	err := c.Do(ctx, Request{Method: "environment.control.GetEnvs", Params: url.Values{}, Idempotent: true}, &w)
	if err != nil {
		return nil, err
	}
	out := make([]EnvInfo, 0, len(w.Infos))
	for i := range w.Infos {
		out = append(out, *w.Infos[i].envInfo())
	}
	return out, nil
}

// CloneEnv clones src into a new environment dst and returns the clone,
// which the platform reports running. The clone's application
// configuration is NOT rewritten: its config.php still points at the
// source's database and wwwroot until the caller changes it.
//
// CloneEnv is never retried after the request may have reached the
// platform, because a second clone request would fail or clone twice.
func (c *Client) CloneEnv(ctx context.Context, src, dst string) (*EnvInfo, error) {
	const method = "environment.control.CloneEnv"
	if err := requireEnv("CloneEnv", src); err != nil {
		return nil, err
	}
	if err := ValidateEnvName(dst); err != nil {
		return nil, fmt.Errorf("jelastic %s %q to %q: %w", method, src, dst, err)
	}
	if src == dst {
		return nil, fmt.Errorf("jelastic %s %q: source and destination are the same environment", method, src)
	}
	var w wireEnvInfo
	err := c.Do(ctx, Request{
		Method: method,
		Params: url.Values{"srcEnvName": {src}, "dstEnvName": {dst}},
	}, &w)
	if err != nil {
		return nil, fmt.Errorf("clone %q to %q: %w", src, dst, err)
	}
	if w.Env == nil {
		return nil, fmt.Errorf("jelastic %s %q to %q: response has no env object", method, src, dst)
	}
	return w.envInfo(), nil
}

// ValidateEnvName checks a name for a new environment: 1 to 33 characters
// of ASCII letters, digits and hyphens, starting with a letter or digit.
func ValidateEnvName(name string) error {
	if name == "" {
		return fmt.Errorf("environment name is empty")
	}
	if len(name) > MaxEnvNameLen {
		return fmt.Errorf("environment name %q is %d characters long; the platform allows at most %d", name, len(name), MaxEnvNameLen)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' && i > 0
		if !ok {
			return fmt.Errorf("environment name %q: character %q at %d is not allowed (use letters, digits and inner hyphens)", name, r, i+1)
		}
	}
	return nil
}

// StartEnv starts a stopped or sleeping environment. The platform returns
// when it is running.
func (c *Client) StartEnv(ctx context.Context, env string) error {
	return c.envAction(ctx, "StartEnv", env, true)
}

// StopEnv stops a running environment. The platform returns when it is
// stopped.
func (c *Client) StopEnv(ctx context.Context, env string) error {
	return c.envAction(ctx, "StopEnv", env, true)
}

// SleepEnv puts an environment to sleep (hibernation).
func (c *Client) SleepEnv(ctx context.Context, env string) error {
	return c.envAction(ctx, "SleepEnv", env, true)
}

// DeleteEnv deletes an environment for good. password confirms the
// deletion: the account password or the environment name, depending on the
// platform's environment.delete.confirm.type quota. It is never logged.
func (c *Client) DeleteEnv(ctx context.Context, env, password string) error {
	if err := requireEnv("DeleteEnv", env); err != nil {
		return err
	}
	p := url.Values{"envName": {env}}
	if password != "" {
		p.Set("password", password)
	}
	return c.Do(ctx, Request{Method: "environment.control.DeleteEnv", Params: p}, nil)
}

// RestartNodes restarts the nodes of a node group ("cp", "sqldb", ...);
// an empty group restarts every node.
func (c *Client) RestartNodes(ctx context.Context, env, group string) error {
	if err := requireEnv("RestartNodes", env); err != nil {
		return err
	}
	p := url.Values{"envName": {env}}
	if group != "" {
		p.Set("nodeGroup", group)
	}
	return c.Do(ctx, Request{Method: "environment.control.RestartNodes", Params: p}, nil)
}

func (c *Client) envAction(ctx context.Context, name, env string, idempotent bool) error {
	if err := requireEnv(name, env); err != nil {
		return err
	}
	return c.Do(ctx, Request{
		Method:     "environment.control." + name,
		Params:     url.Values{"envName": {env}},
		Idempotent: idempotent,
	}, nil)
}

// WaitStatus polls GetEnvInfo every interval until the environment reports
// want, ctx ends or timeout (0: no limit besides ctx) passes. It returns the
// last EnvInfo seen. API errors end the wait at once.
func (c *Client) WaitStatus(ctx context.Context, env string, want Status, timeout, interval time.Duration) (*EnvInfo, error) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var last *EnvInfo
	for {
		info, err := c.GetEnvInfo(ctx, env)
		if err != nil && ctx.Err() == nil {
			return last, fmt.Errorf("wait for env %q to be %s: %w", env, want, err)
		}
		if err == nil {
			last = info
			if info.Status == want {
				return info, nil
			}
		}
		if err := sleepCtx(ctx, interval); err != nil {
			seen := "no status seen yet"
			if last != nil {
				seen = "last seen status " + last.Status.String() + " (" + strconv.Itoa(int(last.Status)) + ")"
			}
			return last, fmt.Errorf("wait for env %q to be %s: %s: %w", env, want, seen, err)
		}
	}
}

func requireEnv(method, env string) error {
	if env == "" {
		return fmt.Errorf("jelastic %s: environment name is empty", method)
	}
	return nil
}
