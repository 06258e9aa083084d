package jelasticsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/mbackup/mbackup/restore/jelastic"
)

// Exit statuses the simulator reports when a command did not exit by itself.
const (
	exitTimeout  = 124 // as timeout(1)
	exitNotStart = 127 // as a shell for a command it cannot run
)

// cmdSpec is one element of commandList.
type cmdSpec struct {
	Command string `json:"command"`
	Params  string `json:"params"`
}

// parseCommandList accepts the platform's JSON array and, leniently, the
// single object the OpenAPI spec describes.
func parseCommandList(s string) ([]cmdSpec, error) {
	bad := apiErr(jelastic.CodeInvalidParameter, `invalid parameter [commandList]: want a JSON array like [{"command":"...","params":"..."}]`)
	s = strings.TrimSpace(s)
	var list []cmdSpec
	switch {
	case strings.HasPrefix(s, "["):
		if json.Unmarshal([]byte(s), &list) != nil {
			return nil, bad
		}
	case strings.HasPrefix(s, "{"):
		var one cmdSpec
		if json.Unmarshal([]byte(s), &one) != nil {
			return nil, bad
		}
		list = []cmdSpec{one}
	default:
		return nil, bad
	}
	if len(list) == 0 {
		return nil, bad
	}
	for _, c := range list {
		if strings.TrimSpace(c.Command) == "" {
			return nil, bad
		}
	}
	return list, nil
}

func (s *Server) execCmdByGroup(ctx context.Context, p params) (response, error) {
	if _, err := p.require("nodeGroup"); err != nil {
		return nil, err
	}
	return s.exec(ctx, p)
}

func (s *Server) execCmdByID(ctx context.Context, p params) (response, error) {
	if _, err := p.require("nodeId"); err != nil {
		return nil, err
	}
	return s.exec(ctx, p)
}

// exec runs commandList on the selected nodes, one after the other. The
// environment lock is held only to read its state: commands may run long
// and other calls must go on meanwhile, as on the platform.
func (s *Server) exec(ctx context.Context, p params) (response, error) {
	raw, err := p.require("commandList")
	if err != nil {
		return nil, err
	}
	cmds, err := parseCommandList(raw)
	if err != nil {
		return nil, err
	}
	var (
		st      *envState
		targets []nodeState
	)
	_, err = s.withEnv(p, func(_ string, state *envState) (response, error) {
		if err := requireRunning(state); err != nil {
			return nil, err
		}
		nodes, err := selectNodes(state, p)
		st, targets = state, nodes
		return nil, err
	})
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.CmdTimeout)
	defer cancel()
	results := make([]response, 0, len(targets))
	var failed *nodeRun
	for _, n := range targets {
		run := s.runNode(ctx, st.EnvName, n, cmds)
		res := response{
			"nodeid": n.ID, "result": jelastic.CodeOK, "exitStatus": run.exit,
			"out": run.out, "errOut": run.errOut,
		}
		if run.exit != 0 {
			res["result"] = jelastic.CodeCommandFailed
			res["error"] = run.reason()
			if failed == nil {
				failed = &run
			}
		}
		results = append(results, res)
	}
	if failed != nil {
		return nil, &apiError{
			code:  jelastic.CodeCommandFailed,
			msg:   fmt.Sprintf("command failed on node %d (%s): %s", failed.node.ID, failed.node.NodeGroup, failed.reason()),
			extra: response{"responses": results},
		}
	}
	return response{"responses": results}, nil
}

// nodeRun is the outcome of one node's commands.
type nodeRun struct {
	node     nodeState
	exit     int
	out      string
	errOut   string
	timedOut bool
}

func (r *nodeRun) reason() string {
	if r.timedOut {
		return "command timed out"
	}
	return "exit status " + strconv.Itoa(r.exit)
}

// runNode runs the commands in order in the environment folder and stops
// at the first that fails. Output of all of them is concatenated and capped.
func (s *Server) runNode(ctx context.Context, env string, n nodeState, cmds []cmdSpec) nodeRun {
	run := nodeRun{node: n}
	stdout := &capBuffer{max: s.cfg.MaxOutput}
	stderr := &capBuffer{max: s.cfg.MaxOutput}
	environ := s.commandEnv(env, n)
	start := time.Now()
	for _, c := range cmds {
		line := c.Command
		if c.Params != "" {
			line += " " + c.Params
		}
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Dir = s.envDir(env)
		cmd.Env = environ
		cmd.Stdout = stdout
		cmd.Stderr = stderr
		cmd.WaitDelay = 5 * time.Second
		killProcessGroup(cmd)
		err := cmd.Run()
		if err == nil {
			continue
		}
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			run.exit, run.timedOut = exitTimeout, true
			fmt.Fprintf(stderr, "\n[jelastic-sim: command stopped: %v]\n", context.Cause(ctx))
		case errors.As(err, &ee):
			run.exit = ee.ExitCode()
			if run.exit < 0 {
				run.exit = 128 + signalNumber(ee)
			}
		default:
			run.exit = exitNotStart
			fmt.Fprintf(stderr, "\n[jelastic-sim: cannot run command: %v]\n", err)
		}
		break
	}
	run.out, run.errOut = stdout.String(), stderr.String()
	// Commands are not logged: they may carry passwords.
	s.log.Debug("jelastic-sim exec", "env", env, "node", n.ID, "group", n.NodeGroup,
		"commands", len(cmds), "exitStatus", run.exit, "duration", time.Since(start))
	return run
}

// commandEnv is the simulator's environment plus the variables a command
// needs to reach the environment's database.
func (s *Server) commandEnv(env string, n nodeState) []string {
	override := map[string]bool{}
	vars := append([]string{
		"MOODLE_ENV=" + env,
		"PGDATABASE=" + dbName(env),
		"JELASTIC_NODE_ID=" + strconv.Itoa(n.ID),
		"JELASTIC_NODE_GROUP=" + n.NodeGroup,
	}, s.pgEnv...)
	for _, v := range vars {
		override[v[:strings.IndexByte(v, '=')]] = true
	}
	out := make([]string, 0, len(os.Environ())+len(vars))
	for _, v := range os.Environ() {
		name, _, _ := strings.Cut(v, "=")
		// Drop inherited libpq settings too, so none leaks into commands.
		if !override[name] && !strings.HasPrefix(name, "PG") {
			out = append(out, v)
		}
	}
	return append(out, vars...)
}

// capBuffer keeps the first max bytes written to it and counts the rest.
type capBuffer struct {
	max     int
	buf     bytes.Buffer
	dropped int64
}

func (c *capBuffer) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	c.dropped += int64(len(p) - max(room, 0))
	return len(p), nil
}

func (c *capBuffer) String() string {
	s := strings.ToValidUTF8(c.buf.String(), "\uFFFD")
	if c.dropped > 0 {
		s += fmt.Sprintf("\n[jelastic-sim: output truncated, %d more bytes dropped]", c.dropped)
	}
	return s
}
