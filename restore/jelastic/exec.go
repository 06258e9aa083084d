package jelastic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// command is one element of the commandList JSON array.
type command struct {
	Command string `json:"command"`
	Params  string `json:"params"`
}

// ExecCmdByGroup runs shell command lines, in order, on every node of a
// node group ("cp", "sqldb", ...) and returns one CmdResult per node.
//
// A command that exits non-zero makes the platform answer with result 4109:
// the returned error is an *Error for which IsCommandFailed is true, whose
// Results (also returned) keep every node's exit status, stdout and stderr.
//
// ExecCmd calls are not idempotent in general, so they are retried only
// when the request provably never reached the platform.
func (c *Client) ExecCmdByGroup(ctx context.Context, env, group string, cmds ...string) ([]CmdResult, error) {
	if group == "" {
		return nil, fmt.Errorf("jelastic ExecCmdByGroup env %q: node group is empty", env)
	}
	return c.exec(ctx, "environment.control.ExecCmdByGroup", env, url.Values{"nodeGroup": {group}}, cmds)
}

// ExecCmdByID is ExecCmdByGroup for a single node, by its id.
func (c *Client) ExecCmdByID(ctx context.Context, env string, nodeID int, cmds ...string) ([]CmdResult, error) {
	return c.exec(ctx, "environment.control.ExecCmdById", env, url.Values{"nodeId": {strconv.Itoa(nodeID)}}, cmds)
}

func (c *Client) exec(ctx context.Context, method, env string, p url.Values, cmds []string) ([]CmdResult, error) {
	if err := requireEnv(method, env); err != nil {
		return nil, err
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("jelastic %s env %q: no command given", method, env)
	}
	list := make([]command, len(cmds))
	for i, cmd := range cmds {
		if cmd == "" {
			return nil, fmt.Errorf("jelastic %s env %q: command %d is empty", method, env, i+1)
		}
		list[i] = command{Command: cmd}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("jelastic %s env %q: encode commandList: %w", method, env, err)
	}
	p.Set("envName", env)
	p.Set("commandList", string(b))
	var w struct {
		Responses []wireCmdResult `json:"responses"`
	}
	if err := c.Do(ctx, Request{Method: method, Params: p}, &w); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e.Results, err
		}
		return nil, err
	}
	out := make([]CmdResult, 0, len(w.Responses))
	for i := range w.Responses {
		out = append(out, w.Responses[i].cmdResult())
	}
	return out, nil
}
