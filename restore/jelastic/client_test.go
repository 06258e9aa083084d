package jelastic

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestGetEnvInfoFixtures(t *testing.T) {
	tests := []struct {
		fixture string
		want    EnvInfo
	}{
		{
			fixture: "getenvinfo_sample.json",
			want: EnvInfo{
				Name: "local-sha-master-0954606", AppID: "e789335e67f6ac362bcdc7f49443de36",
				Domain: "local-sha-master-0954606.hidora.com", Status: StatusRunning,
				CreatedOn: "2021-08-19 14:51:37",
				Nodes: []Node{{
					ID: 89876, NodeGroup: "docker", NodeType: "docker", Name: "alpine", IsMaster: true, Status: 1,
					IntIP: "10.102.15.248", Address: "10.102.15.248",
					URL: "http://node89876-local-sha-master-0954606.hidora.com",
				}},
				NodeGroups: []string{"docker"},
			},
		},
		{
			fixture: "getenvinfo_moodle.json",
			want: EnvInfo{
				Name: "client-x", AppID: "0b1e7c0f3a9d4e55a1c2d3e4f5a6b7c8", Domain: "client-x.example-hoster.ch",
				DisplayName: "Client X Moodle", Status: StatusStopped, CreatedOn: "2023-02-01 09:12:44",
				Nodes: []Node{
					{ID: 41001, NodeGroup: "cp", NodeType: "apache2", Name: "Apache 2", IsMaster: true, Status: 2,
						IntIP: "10.101.4.17", Address: "10.101.4.17", URL: "http://node41001-client-x.example-hoster.ch"},
					{ID: 41002, NodeGroup: "sqldb", NodeType: "postgres15", Name: "PostgreSQL 15", IsMaster: true, Status: 2,
						IntIP: "10.101.4.18", Address: "10.101.4.18"},
				},
				NodeGroups: []string{"cp", "sqldb"},
			},
		},
		{
			// nodeId/nodeid/id, isMaster as string/bool/number, numbers as
			// strings, nodemission instead of nodeGroup, unknown fields.
			fixture: "getenvinfo_variants.json",
			want: EnvInfo{
				Name: "client-y", AppID: "a1", Domain: "client-y.example-hoster.ch", Status: StatusSleeping,
				Nodes: []Node{
					{ID: 52001, NodeGroup: "cp", NodeType: "apache2", IsMaster: true, Status: 1, IntIP: "10.0.0.5", Address: "10.0.0.5"},
					{ID: 52002, NodeGroup: "sqldb", NodeType: "postgres15", IntIP: "10.0.0.6", Address: "10.0.0.6"},
					{ID: 52003, NodeGroup: "cp", NodeType: "apache2"},
				},
				NodeGroups: []string{"cp", "sqldb"},
			},
		},
		{
			fixture: "getenvinfo_wrapped.json",
			want: EnvInfo{
				Name: "client-w", AppID: "w1", Domain: "client-w.example-hoster.ch", Status: StatusRunning,
				Nodes:      []Node{{ID: 61001, NodeGroup: "cp", NodeType: "apache2", IsMaster: true, Status: 1, IntIP: "10.0.1.1", Address: "10.0.1.1"}},
				NodeGroups: []string{"cp"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			fs := newFixtureServer(t, map[string]string{"/1.0/environment/control/rest/getenvinfo": tt.fixture})
			got, err := fs.client().GetEnvInfo(context.Background(), tt.want.Name)
			if err != nil {
				t.Fatalf("GetEnvInfo: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("GetEnvInfo mismatch\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestMasterAndGroup(t *testing.T) {
	info := EnvInfo{Nodes: []Node{
		{ID: 1, NodeGroup: "cp"}, {ID: 2, NodeGroup: "cp", IsMaster: true}, {ID: 3, NodeGroup: "sqldb"},
	}}
	if n, ok := info.Master("cp"); !ok || n.ID != 2 {
		t.Errorf("Master(cp) = %v, %v; want node 2", n, ok)
	}
	if n, ok := info.Master("sqldb"); !ok || n.ID != 3 {
		t.Errorf("Master(sqldb) = %v, %v; want node 3 (first, none flagged)", n, ok)
	}
	if _, ok := info.Master("storage"); ok {
		t.Error("Master(storage) found a node in an env without that group")
	}
	if got := len(info.Group("cp")); got != 2 {
		t.Errorf("Group(cp) has %d nodes, want 2", got)
	}
}

func TestRequestShape(t *testing.T) {
	fs := newFixtureServer(t, map[string]string{"/1.0/environment/control/rest/getenvinfo": "getenvinfo_moodle.json"})
	if _, err := fs.client().GetEnvInfo(context.Background(), "client-x"); err != nil {
		t.Fatal(err)
	}
	reqs := fs.requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" {
		t.Errorf("method %s, want POST", r.Method)
	}
	if r.ContentType != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", r.ContentType)
	}
	if r.RawQuery != "" {
		t.Errorf("query %q: parameters (and the token) must travel in the body", r.RawQuery)
	}
	if got := r.Form.Get("session"); got != testToken {
		t.Errorf("session = %q, want the token", got)
	}
	if got := r.Form.Get("envName"); got != "client-x" {
		t.Errorf("envName = %q", got)
	}
}

func TestAPIErrorMapping(t *testing.T) {
	tests := []struct {
		fixture                 string
		code                    int
		notExist, auth, cmdFail bool
		msg                     string
	}{
		{"error_701_signin.json", 701, false, true, false, "authentication failed"},
		{"error_702_session.json", 702, false, true, false, "user is not authenticated"},
		{"error_11_env.json", 11, true, false, false, "application [client-x] not exist"},
		{"error_901_env.json", 901, true, false, false, "Environment client-x does not exist."},
		{"error_3_param.json", 3, false, false, false, "invalid parameter [envName]"},
		{"wrapped_error_11.json", 11, true, false, false, "application [client-w] not exist"},
		{"execcmd_4109.json", 4109, false, false, true, "An error occurred while executing the command"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			fs := newFixtureServer(t, map[string]string{"/1.0/environment/control/rest/getenvinfo": tt.fixture})
			_, err := fs.client().GetEnvInfo(context.Background(), "client-x")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.Code != tt.code || Code(err) != tt.code {
				t.Errorf("code %d, want %d", e.Code, tt.code)
			}
			if e.Message != tt.msg {
				t.Errorf("message %q, want %q", e.Message, tt.msg)
			}
			if e.Method != "environment.control.GetEnvInfo" || e.Env != "client-x" {
				t.Errorf("method/env = %q/%q", e.Method, e.Env)
			}
			if IsNotExist(err) != tt.notExist || IsAuth(err) != tt.auth || IsCommandFailed(err) != tt.cmdFail {
				t.Errorf("IsNotExist=%v IsAuth=%v IsCommandFailed=%v", IsNotExist(err), IsAuth(err), IsCommandFailed(err))
			}
			if IsTransport(err) {
				t.Error("an API error is reported as a transport error")
			}
			for _, want := range []string{"environment.control.GetEnvInfo", `"client-x"`, tt.msg} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error text %q lacks %q", err, want)
				}
			}
			if n := len(fs.requests()); n != 1 {
				t.Errorf("API error sent %d requests; API errors must not be retried", n)
			}
		})
	}
}

func TestExecCmdByGroup(t *testing.T) {
	t.Run("ok lower-case nodeid", func(t *testing.T) {
		fs := newFixtureServer(t, map[string]string{"/1.0/environment/control/rest/execcmdbygroup": "execcmd_ok.json"})
		res, err := fs.client().ExecCmdByGroup(context.Background(), "client-x", "cp", "hostname -f", "echo 'a b'")
		if err != nil {
			t.Fatal(err)
		}
		want := []CmdResult{{NodeID: 41001, Out: "client-x.example-hoster.ch"}}
		if !reflect.DeepEqual(res, want) {
			t.Errorf("results %+v, want %+v", res, want)
		}
		form := fs.requests()[0].Form
		if form.Get("nodeGroup") != "cp" || form.Get("envName") != "client-x" {
			t.Errorf("nodeGroup/envName = %q/%q", form.Get("nodeGroup"), form.Get("envName"))
		}
		var list []map[string]string
		if err := json.Unmarshal([]byte(form.Get("commandList")), &list); err != nil {
			t.Fatalf("commandList %q is not a JSON array: %v", form.Get("commandList"), err)
		}
		wantList := []map[string]string{{"command": "hostname -f", "params": ""}, {"command": "echo 'a b'", "params": ""}}
		if !reflect.DeepEqual(list, wantList) {
			t.Errorf("commandList %v, want %v", list, wantList)
		}
	})
	t.Run("ok camel-case nodeId, string id", func(t *testing.T) {
		fs := newFixtureServer(t, map[string]string{"/1.0/environment/control/rest/execcmdbyid": "execcmd_ok_camel.json"})
		res, err := fs.client().ExecCmdByID(context.Background(), "client-x", 41001, "cat /etc/hostname")
		if err != nil {
			t.Fatal(err)
		}
		want := []CmdResult{{NodeID: 41001, Out: "line1\nline2", ErrOut: "warn"}, {NodeID: 41003, Out: "x"}}
		if !reflect.DeepEqual(res, want) {
			t.Errorf("results %+v, want %+v", res, want)
		}
		if got := fs.requests()[0].Form.Get("nodeId"); got != "41001" {
			t.Errorf("nodeId = %q", got)
		}
	})
	t.Run("4109 keeps exit status and output", func(t *testing.T) {
		fs := newFixtureServer(t, map[string]string{"/1.0/environment/control/rest/execcmdbygroup": "execcmd_4109.json"})
		res, err := fs.client().ExecCmdByGroup(context.Background(), "client-x", "cp", "pg_dump moodle")
		if !IsCommandFailed(err) {
			t.Fatalf("err = %v, want a 4109 command failure", err)
		}
		var e *Error
		errors.As(err, &e)
		if e.ExitStatus() != 2 {
			t.Errorf("ExitStatus() = %d, want 2", e.ExitStatus())
		}
		want := []CmdResult{{NodeID: 41001, Result: 4109, ExitStatus: 2, Out: "partial",
			ErrOut: "pg_dump: error: connection to server failed\nsecond line", Error: "command failed"}}
		if !reflect.DeepEqual(e.Results, want) || !reflect.DeepEqual(res, want) {
			t.Errorf("results %+v / %+v, want %+v", e.Results, res, want)
		}
		for _, s := range []string{"exit status 2", "node 41001", "connection to server failed"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q lacks %q", err, s)
			}
		}
		if strings.Contains(err.Error(), "second line") {
			t.Errorf("error %q should carry only the first stderr line", err)
		}
	})
	t.Run("bad input never reaches the server", func(t *testing.T) {
		fs := newFixtureServer(t, nil)
		c := fs.client()
		if _, err := c.ExecCmdByGroup(context.Background(), "client-x", "cp"); err == nil {
			t.Error("no command: want an error")
		}
		if _, err := c.ExecCmdByGroup(context.Background(), "client-x", "", "true"); err == nil {
			t.Error("no group: want an error")
		}
		if _, err := c.ExecCmdByGroup(context.Background(), "client-x", "cp", ""); err == nil {
			t.Error("empty command: want an error")
		}
		if n := len(fs.requests()); n != 0 {
			t.Errorf("%d requests sent for invalid input", n)
		}
	})
}

func TestGetEnvsUserInfoFile(t *testing.T) {
	fs := newFixtureServer(t, map[string]string{
		"/1.0/environment/control/rest/getenvs": "getenvs_ok.json",
		"/1.0/users/account/rest/getuserinfo":   "getuserinfo_ok.json",
		"/1.0/environment/file/rest/read":       "fileread_ok.json",
	})
	c := fs.client()
	ctx := context.Background()
	envs, err := c.GetEnvs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 2 || envs[0].Name != "client-x" || envs[1].Name != "client-x-staging" || envs[1].Status != StatusStopped {
		t.Errorf("GetEnvs = %+v", envs)
	}
	if len(envs[0].Nodes) != 1 || envs[0].Nodes[0].NodeGroup != "cp" {
		t.Errorf("GetEnvs nodes = %+v", envs[0].Nodes)
	}
	ui, err := c.GetUserInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *ui != (UserInfo{UID: 1163, Email: "ops@example.ch", Name: "Ops"}) {
		t.Errorf("GetUserInfo = %+v", *ui)
	}
	body, err := c.ReadFile(ctx, "client-x", "cp", "/var/www/webroot/ROOT/config.php")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "$CFG->dbhost = '10.101.4.18'") {
		t.Errorf("ReadFile body %q", body)
	}
}

func TestSignIn(t *testing.T) {
	fs := newFixtureServer(t, map[string]string{"/1.0/users/authentication/rest/signin": "signin_ok.json"})
	s, err := fs.client().SignIn(context.Background(), "ops@example.ch", "hunter2-secret")
	if err != nil {
		t.Fatal(err)
	}
	if s != "48bxaad71ccc7996325f3803311326b0247d" {
		t.Errorf("session %q", s)
	}
	form := fs.requests()[0].Form
	if form.Get("login") != "ops@example.ch" || form.Get("password") != "hunter2-secret" {
		t.Errorf("signin form %v", form)
	}
	if form.Has("session") {
		t.Error("signin sent the client's token")
	}

	bad := newFixtureServer(t, map[string]string{"/1.0/users/authentication/rest/signin": "error_701_signin.json"})
	_, err = bad.client().SignIn(context.Background(), "ops@example.ch", "hunter2-secret")
	if !IsAuth(err) || Code(err) != CodeAuthFailed {
		t.Errorf("bad signin: err = %v, want a 701 auth error", err)
	}
	if strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("error %q leaks the password", err)
	}
}

func TestUnparsableBodyIsTransportError(t *testing.T) {
	for _, body := range []string{"<html>Bad gateway</html>", `{"no":"result"}`, `[1,2]`, `{"result":"x"}`, ``} {
		t.Run(body, func(t *testing.T) {
			srv := newRawServer(t, func(hit int) (int, string) { return 200, body })
			_, err := srv.client().GetEnvInfo(context.Background(), "client-x")
			var te *TransportError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v (%T), want *TransportError", err, err)
			}
			if Code(err) != -1 {
				t.Errorf("Code = %d for a transport error", Code(err))
			}
			if srv.hits() != 1 {
				t.Errorf("%d attempts: an unparsable 200 body must not be retried", srv.hits())
			}
		})
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, base := range []string{"", "app.example.ch/1.0", "ftp://x/1.0", "https://x/1.0?session=" + testToken} {
		_, err := New(base, testToken).GetEnvInfo(context.Background(), "a")
		if err == nil {
			t.Errorf("base %q: want an error", base)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("base %q: error %q leaks the token", base, err)
		}
	}
}

func TestMethodPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"environment.control.GetEnvInfo", "environment/control/rest/getenvinfo", true},
		{"users.authentication.Signin", "users/authentication/rest/signin", true},
		{"environment.control", "", false},
		{"a.b.c.d", "", false},
		{"a..c", "", false},
		{"a.b/x.c", "", false},
	}
	for _, tt := range tests {
		got, err := methodPath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("methodPath(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
