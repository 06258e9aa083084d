package jelastic

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidateEnvName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"client-x-staging", true},
		{"a", true},
		{strings.Repeat("a", 33), true},
		{strings.Repeat("a", 34), false},
		{"", false},
		{"-leading", false},
		{"has space", false},
		{"dots.not.ok", false},
		{"../escape", false},
		{"ünicode", false},
	}
	for _, tt := range tests {
		if err := ValidateEnvName(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidateEnvName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCloneEnvValidatesClientSide(t *testing.T) {
	srv := newRawServer(t, func(int) (int, string) { return 200, okEnvInfo })
	c := srv.client()
	for _, dst := range []string{"", strings.Repeat("x", 34), "client-x", "bad/name"} {
		if _, err := c.CloneEnv(context.Background(), "client-x", dst); err == nil {
			t.Errorf("CloneEnv to %q: want an error", dst)
		}
	}
	if srv.hits() != 0 {
		t.Errorf("%d requests sent for invalid clone names", srv.hits())
	}
}

func TestCloneEnvRequest(t *testing.T) {
	fs := newFixtureServer(t, map[string]string{"/1.0/environment/control/rest/cloneenv": "getenvinfo_moodle.json"})
	info, err := fs.client().CloneEnv(context.Background(), "client-x", "client-x-staging")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "client-x" || len(info.Nodes) != 2 {
		t.Errorf("clone info %+v", info)
	}
	f := fs.requests()[0].Form
	if f.Get("srcEnvName") != "client-x" || f.Get("dstEnvName") != "client-x-staging" {
		t.Errorf("clone form %v", f)
	}
}

func TestDeleteEnvAndRestartRequests(t *testing.T) {
	fs := newFixtureServer(t, map[string]string{
		"/1.0/environment/control/rest/deleteenv":    "getuserinfo_ok.json",
		"/1.0/environment/control/rest/restartnodes": "getuserinfo_ok.json",
		"/1.0/environment/control/rest/stopenv":      "getuserinfo_ok.json",
		"/1.0/environment/control/rest/startenv":     "getuserinfo_ok.json",
		"/1.0/environment/control/rest/sleepenv":     "getuserinfo_ok.json",
	})
	c := fs.client()
	ctx := context.Background()
	if err := c.DeleteEnv(ctx, "client-x-staging", "client-x-staging"); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartNodes(ctx, "client-x-staging", "cp"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(context.Context, string) error{c.StopEnv, c.StartEnv, c.SleepEnv} {
		if err := f(ctx, "client-x-staging"); err != nil {
			t.Fatal(err)
		}
	}
	reqs := fs.requests()
	if got := reqs[0].Form.Get("password"); got != "client-x-staging" {
		t.Errorf("deleteenv password = %q", got)
	}
	if got := reqs[1].Form.Get("nodeGroup"); got != "cp" {
		t.Errorf("restartnodes nodeGroup = %q", got)
	}
	wantPaths := []string{"deleteenv", "restartnodes", "stopenv", "startenv", "sleepenv"}
	for i, p := range wantPaths {
		if !strings.HasSuffix(reqs[i].Path, "/rest/"+p) || reqs[i].Form.Get("envName") != "client-x-staging" {
			t.Errorf("request %d: %s %v", i, reqs[i].Path, reqs[i].Form)
		}
	}
}

func TestWaitStatus(t *testing.T) {
	seq := []Status{StatusStopping, StatusStopped, StatusStopped, StatusRunning}
	srv := newRawServer(t, func(hit int) (int, string) {
		s := seq[min(hit-1, len(seq)-1)]
		return 200, fmt.Sprintf(`{"result":0,"env":{"envName":"client-x","status":%d}}`, s)
	})
	c := srv.client()
	info, err := c.WaitStatus(context.Background(), "client-x", StatusRunning, time.Minute, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != StatusRunning || srv.hits() != 4 {
		t.Errorf("status %v after %d polls, want running after 4", info.Status, srv.hits())
	}

	stuck := newRawServer(t, func(int) (int, string) {
		return 200, `{"result":0,"env":{"envName":"client-x","status":2}}`
	})
	_, err = stuck.client().WaitStatus(context.Background(), "client-x", StatusRunning, 20*time.Millisecond, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "last seen status stopped (2)") {
		t.Errorf("err = %v, want a timeout naming the last status", err)
	}

	gone := newRawServer(t, func(int) (int, string) {
		return 200, `{"result":11,"error":"application [client-x] not exist"}`
	})
	_, err = gone.client().WaitStatus(context.Background(), "client-x", StatusRunning, time.Minute, time.Millisecond)
	if !IsNotExist(err) || gone.hits() != 1 {
		t.Errorf("err = %v after %d polls, want IsNotExist after 1", err, gone.hits())
	}
}

func TestStatusString(t *testing.T) {
	tests := map[Status]string{
		StatusRunning: "running", StatusStopped: "stopped", StatusSleeping: "sleeping",
		StatusCloning: "cloning", StatusDeleting: "deleting", Status(77): "status(77)",
	}
	for s, want := range tests {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}
