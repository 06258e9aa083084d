package jelasticsim_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbackup/mbackup/restore/jelastic"
	"github.com/mbackup/mbackup/restore/jelastic/jelasticsim"
)

// TestClientAgainstSimulator walks the staging life cycle with the real
// client, the simulator and the real PostgreSQL.
func TestClientAgainstSimulator(t *testing.T) {
	h := newHarness(t, nil)
	src := uniqueEnv(t, "e2e")
	dst := src + "-c"
	h.makeEnv(src)
	c := h.client(simToken)
	ctx := context.Background()

	// GetEnvInfo: real-shaped, running, cp + sqldb nodes.
	info, err := c.GetEnvInfo(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != src || info.Status != jelastic.StatusRunning || info.Domain != src+".sim.local" || info.AppID == "" {
		t.Errorf("GetEnvInfo = %+v", info)
	}
	if !reflect.DeepEqual(info.NodeGroups, []string{"cp", "sqldb"}) {
		t.Errorf("node groups %v", info.NodeGroups)
	}
	cp, okCP := info.Master("cp")
	sqldb, okDB := info.Master("sqldb")
	if !okCP || !okDB || cp.NodeType != "apache2" || sqldb.NodeType != "postgres15" || cp.ID == sqldb.ID || cp.IntIP == "" {
		t.Errorf("nodes %+v", info.Nodes)
	}
	again, err := c.GetEnvInfo(ctx, src)
	if err != nil || again.Nodes[0].ID != info.Nodes[0].ID || again.AppID != info.AppID {
		t.Errorf("node ids / appid not stable: %+v vs %+v (%v)", again, info, err)
	}

	// CloneEnv: folder and database copied, config.php unchanged.
	clone, err := c.CloneEnv(ctx, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if clone.Name != dst || clone.Status != jelastic.StatusRunning || clone.AppID == info.AppID || len(clone.Nodes) != 2 {
		t.Errorf("clone info %+v", clone)
	}
	for _, n := range clone.Nodes {
		for _, o := range info.Nodes {
			if n.ID == o.ID {
				t.Errorf("clone reuses node id %d", n.ID)
			}
		}
	}
	srcDir, dstDir := filepath.Join(h.root, src), filepath.Join(h.root, dst)
	for _, rel := range []string{"moodledata/filedir/ab/cd/abcd1234", "moodledata/temp/x.tmp", "www/config.php"} {
		a, errA := os.ReadFile(filepath.Join(srcDir, rel))
		b, errB := os.ReadFile(filepath.Join(dstDir, rel))
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Errorf("%s not copied: %v %v", rel, errA, errB)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(dstDir, "www/config.php"))
	if !strings.Contains(string(cfg), "$CFG->dbname = '"+strings.ReplaceAll(src, "-", "_")+"'") {
		t.Errorf("clone config.php must still name the SOURCE database (hazard H1):\n%s", cfg)
	}
	srcDB, dstDB := strings.ReplaceAll(src, "-", "_"), strings.ReplaceAll(dst, "-", "_")
	want := []string{"Site", "Biology 101", "History 201"}
	if got := courseNames(t, dstDB); !reflect.DeepEqual(got, want) {
		t.Errorf("clone rows %v, want %v", got, want)
	}
	// Independence: changes on either side do not show on the other.
	dbExec(t, srcDB, `INSERT INTO mdl_course (fullname) VALUES ('Only in source')`)
	dbExec(t, dstDB, `DELETE FROM mdl_course WHERE fullname = 'Site'`)
	if err := os.WriteFile(filepath.Join(srcDir, "moodledata/filedir/ab/cd/abcd1234"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := courseNames(t, dstDB); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("clone rows after changes %v, want %v", got, want[1:])
	}
	if got := courseNames(t, srcDB); !reflect.DeepEqual(got, append(append([]string{}, want...), "Only in source")) {
		t.Errorf("source rows after changes %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dstDir, "moodledata/filedir/ab/cd/abcd1234")); string(b) != "file content one" {
		t.Errorf("clone file changed with the source: %q", b)
	}

	// ExecCmdByGroup: runs in the env folder with the env's database.
	res, err := c.ExecCmdByGroup(ctx, dst, "cp",
		`echo "$MOODLE_ENV $PGDATABASE"; test -f www/config.php && echo in-folder`,
		`psql -XAtc "SELECT count(*) FROM mdl_course"`)
	if err != nil {
		t.Fatal(err)
	}
	wantOut := dst + " " + dstDB + "\nin-folder\n2\n"
	if len(res) != 1 || res[0].Out != wantOut || res[0].ExitStatus != 0 || res[0].NodeID != clone.Nodes[0].ID {
		t.Errorf("exec results %+v, want out %q on node %d", res, wantOut, clone.Nodes[0].ID)
	}
	res, err = c.ExecCmdByGroup(ctx, dst, "sqldb", `echo partial; echo "no such table" >&2; exit 3`)
	if !jelastic.IsCommandFailed(err) {
		t.Fatalf("failing command: err = %v, want 4109", err)
	}
	var apiErr *jelastic.Error
	errors.As(err, &apiErr)
	if apiErr.ExitStatus() != 3 || len(res) != 1 || res[0].Out != "partial\n" || res[0].ErrOut != "no such table\n" ||
		res[0].Result != jelastic.CodeCommandFailed {
		t.Errorf("failure details %+v / %+v", apiErr, res)
	}
	if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("error text %q", err)
	}

	// Stop / Start / WaitStatus, and no exec while stopped.
	if err := c.StopEnv(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if got, err := c.WaitStatus(ctx, dst, jelastic.StatusStopped, 10*time.Second, 10*time.Millisecond); err != nil || got.Status != jelastic.StatusStopped {
		t.Fatalf("after StopEnv: %v, %v", got, err)
	}
	if _, err := c.ExecCmdByGroup(ctx, dst, "cp", "true"); jelastic.Code(err) != jelastic.CodeNotPermitted {
		t.Errorf("exec on a stopped env: err = %v, want result 9", err)
	}
	if err := c.StartEnv(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if got, err := c.WaitStatus(ctx, dst, jelastic.StatusRunning, 10*time.Second, 10*time.Millisecond); err != nil || got.Status != jelastic.StatusRunning {
		t.Fatalf("after StartEnv: %v, %v", got, err)
	}
	if err := c.SleepEnv(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetEnvInfo(ctx, dst); got.Status != jelastic.StatusSleeping {
		t.Errorf("after SleepEnv: status %v", got.Status)
	}
	if err := c.StartEnv(ctx, dst); err != nil {
		t.Fatal(err)
	}

	// RestartNodes is recorded where tests can see it.
	if err := c.RestartNodes(ctx, dst, "cp"); err != nil {
		t.Fatal(err)
	}
	m := h.raw("POST", "/1.0/environment/control/rest/getenvinfo", map[string][]string{"session": {simToken}, "envName": {dst}})
	restarts := map[string]float64{}
	for _, n := range m["nodes"].([]any) {
		node := n.(map[string]any)
		restarts[node["nodeGroup"].(string)], _ = node["restarts"].(float64)
		if node["nodeGroup"] == "cp" && node["lastRestart"] == nil {
			t.Error("restarted node has no lastRestart")
		}
	}
	if restarts["cp"] != 1 || restarts["sqldb"] != 0 {
		t.Errorf("restarts %v, want cp 1, sqldb 0", restarts)
	}

	// DeleteEnv: wrong confirmation refused; then folder and database gone.
	if err := c.DeleteEnv(ctx, dst, "not-the-name"); jelastic.Code(err) != jelastic.CodeInvalidPassword {
		t.Errorf("delete with a wrong password: %v, want result 801", err)
	}
	if err := c.DeleteEnv(ctx, dst, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dstDir); !os.IsNotExist(err) {
		t.Errorf("clone folder still there: %v", err)
	}
	if dbExists(t, dstDB) {
		t.Error("clone database still there")
	}
	if _, err := c.GetEnvInfo(ctx, dst); !jelastic.IsNotExist(err) {
		t.Errorf("GetEnvInfo after delete: %v, want not exist", err)
	}
	if err := c.DeleteEnv(ctx, dst, dst); !jelastic.IsNotExist(err) {
		t.Errorf("second delete: %v, want not exist", err)
	}
	// The source is untouched.
	if got := courseNames(t, srcDB); len(got) != 4 {
		t.Errorf("source rows %v", got)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t, func(c *jelasticsim.Config) {
		c.Login = "ops@example.ch"
		c.Password = "s3cret-login-pw"
	})
	env := uniqueEnv(t, "auth")
	if err := os.MkdirAll(filepath.Join(h.root, env), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for name, token := range map[string]string{"no token": "", "wrong token": "not-" + simToken} {
		_, err := h.client(token).GetEnvInfo(ctx, env)
		if jelastic.Code(err) != jelastic.CodeNotAuthenticated || !jelastic.IsAuth(err) {
			t.Errorf("%s: err = %v, want 702", name, err)
		}
	}
	if _, err := h.client(simToken).SignIn(ctx, "ops@example.ch", "wrong"); jelastic.Code(err) != jelastic.CodeAuthFailed {
		t.Errorf("bad signin: %v, want 701", err)
	}
	session, err := h.client("").SignIn(ctx, "ops@example.ch", "s3cret-login-pw")
	if err != nil {
		t.Fatal(err)
	}
	sc := h.client(session)
	if _, err := sc.GetEnvInfo(ctx, env); err != nil {
		t.Errorf("GetEnvInfo with a signin session: %v", err)
	}
	ui, err := sc.GetUserInfo(ctx)
	if err != nil || ui.Email != "ops@example.ch" {
		t.Errorf("GetUserInfo = %+v, %v", ui, err)
	}
	if err := sc.SignOut(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.GetEnvInfo(ctx, env); !jelastic.IsAuth(err) {
		t.Errorf("after signout: %v, want 702", err)
	}
	if _, err := h.client(simToken).GetUserInfo(ctx); err != nil {
		t.Errorf("token after another session's signout: %v", err)
	}
	if strings.Contains(h.logs.String(), "s3cret-login-pw") || strings.Contains(h.logs.String(), session) {
		t.Error("simulator logs contain a password or session")
	}
}

func TestParameterSpellingAndHTTPMethods(t *testing.T) {
	h := newHarness(t, nil)
	env := uniqueEnv(t, "par")
	if err := os.MkdirAll(filepath.Join(h.root, env), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		method string
		path   string
		form   map[string][]string
		want   int
	}{
		{"GET query, lower-case names", "GET", "/1.0/environment/control/rest/getenvinfo", map[string][]string{"session": {simToken}, "envname": {env}}, 0},
		{"GET, upper-case names", "GET", "/1.0/environment/control/rest/getenvinfo", map[string][]string{"SESSION": {simToken}, "ENVNAME": {env}}, 0},
		{"POST form, camel-case", "POST", "/1.0/environment/control/rest/getenvinfo", map[string][]string{"session": {simToken}, "envName": {env}}, 0},
		{"POST, mixed-case path", "POST", "/1.0/Environment/Control/REST/GetEnvInfo", map[string][]string{"Session": {simToken}, "EnvName": {env}}, 0},
		{"missing env", "POST", "/1.0/environment/control/rest/getenvinfo", map[string][]string{"session": {simToken}, "envName": {"t-nope-none"}}, 11},
		{"env name with path tricks", "POST", "/1.0/environment/control/rest/getenvinfo", map[string][]string{"session": {simToken}, "envName": {"../" + env}}, 11},
		{"missing parameter", "POST", "/1.0/environment/control/rest/getenvinfo", map[string][]string{"session": {simToken}}, 3},
		{"unknown method", "POST", "/1.0/environment/control/rest/frobnicate", map[string][]string{"session": {simToken}}, 6},
		{"unknown method without token", "POST", "/1.0/environment/control/rest/frobnicate", nil, 6},
		{"unknown service", "POST", "/1.0/billing/account/rest/getbalance", map[string][]string{"session": {simToken}}, 5},
		{"not an API path", "GET", "/index.html", nil, 5},
		{"no token", "GET", "/1.0/environment/control/rest/getenvs", nil, 702},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := h.raw(tt.method, tt.path, tt.form)
			if got := result(m); got != tt.want {
				t.Errorf("result %d (%v), want %d", got, m["error"], tt.want)
			}
			if tt.want != 0 && m["error"] == "" {
				t.Error("error envelope without error text")
			}
			if tt.want == 11 && !strings.Contains(m["error"].(string), "not exist") {
				t.Errorf("error %q", m["error"])
			}
		})
	}
	// A body value wins over a query value of the same name.
	m := h.raw("POST", "/1.0/environment/control/rest/getenvinfo?envName=t-not-this&session="+simToken,
		map[string][]string{"envname": {env}})
	if result(m) != 0 {
		t.Errorf("body over query: result %d (%v)", result(m), m["error"])
	}
}

func TestCloneFailures(t *testing.T) {
	h := newHarness(t, nil)
	src := uniqueEnv(t, "cf")
	h.makeEnv(src)
	c := h.client(simToken)
	ctx := context.Background()

	existing := src + "-d"
	if err := os.MkdirAll(filepath.Join(h.root, existing), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloneEnv(ctx, src, existing); jelastic.Code(err) != jelastic.CodeNotPermitted {
		t.Errorf("clone onto an existing env: %v, want result 9", err)
	}
	if dbExists(t, strings.ReplaceAll(existing, "-", "_")) {
		t.Error("a refused clone created a database")
	}
	if _, err := c.CloneEnv(ctx, "t-missing-src", src+"-c"); !jelastic.IsNotExist(err) {
		t.Errorf("clone of a missing env: %v, want 11", err)
	}
	long := strings.Repeat("a", 34)
	m := h.raw("POST", "/1.0/environment/control/rest/cloneenv",
		map[string][]string{"session": {simToken}, "srcEnvName": {src}, "dstEnvName": {long}})
	if result(m) != jelastic.CodeInvalidParameter {
		t.Errorf("clone to a 34-character name: result %d, want 3", result(m))
	}

	// A database named like the clone but without a folder belongs to
	// someone else: refuse and leave it alone.
	dst := src + "-c"
	dstDB := strings.ReplaceAll(dst, "-", "_")
	adminExec(t, `CREATE DATABASE "`+dstDB+`"`)
	dbExec(t, dstDB, `CREATE TABLE keep_me (id int)`)
	if _, err := c.CloneEnv(ctx, src, dst); jelastic.Code(err) != jelastic.CodeNotPermitted {
		t.Errorf("clone onto an existing database: %v, want result 9", err)
	}
	dbExec(t, dstDB, `SELECT * FROM keep_me`)
	if _, err := os.Stat(filepath.Join(h.root, dst)); !os.IsNotExist(err) {
		t.Errorf("refused clone left a folder: %v", err)
	}
	adminExec(t, `DROP DATABASE "`+dstDB+`"`)

	// A copy failure half-way removes the half clone: folder and database.
	if err := mkfifo(filepath.Join(h.root, src, "moodledata", "a-fifo")); err != nil {
		t.Fatal(err)
	}
	_, err := c.CloneEnv(ctx, src, dst)
	if jelastic.Code(err) != jelastic.CodeUnknown || !strings.Contains(err.Error(), "unsupported file type") {
		t.Fatalf("clone with a fifo in the source: %v, want result 99 naming the file type", err)
	}
	if dbExists(t, dstDB) {
		t.Error("failed clone left its database")
	}
	entries, _ := os.ReadDir(h.root)
	for _, e := range entries {
		if e.Name() != src && e.Name() != existing {
			t.Errorf("failed clone left %s in the root", e.Name())
		}
	}
}

func TestCloneTerminatesSourceSessions(t *testing.T) {
	h := newHarness(t, nil)
	src := uniqueEnv(t, "busy")
	h.makeEnv(src)
	// An open session on the source would make CREATE DATABASE ... TEMPLATE
	// fail; the simulator frees the source as the platform freezes it.
	conn := pgConnect(t, strings.ReplaceAll(src, "-", "_"))
	defer conn.Close(context.Background())
	if _, err := h.client(simToken).CloneEnv(context.Background(), src, src+"-c"); err != nil {
		t.Fatalf("clone with a busy source: %v", err)
	}
	if got := courseNames(t, strings.ReplaceAll(src+"-c", "-", "_")); len(got) != 3 {
		t.Errorf("clone rows %v", got)
	}
}

func TestStateSurvivesRestartAndDiscovery(t *testing.T) {
	h := newHarness(t, nil)
	env := uniqueEnv(t, "st")
	h.makeEnv(env)
	c := h.client(simToken)
	ctx := context.Background()
	before, err := c.GetEnvInfo(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RestartNodes(ctx, env, "sqldb"); err != nil {
		t.Fatal(err)
	}
	if err := c.StopEnv(ctx, env); err != nil {
		t.Fatal(err)
	}

	h.start() // a new simulator process on the same root
	c = h.client(simToken)
	after, err := c.GetEnvInfo(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != jelastic.StatusStopped || after.AppID != before.AppID || !reflect.DeepEqual(after.Nodes[1].ID, before.Nodes[1].ID) {
		t.Errorf("after restart %+v, before %+v", after, before)
	}
	m := h.raw("GET", "/1.0/environment/control/rest/getenvinfo", map[string][]string{"session": {simToken}, "envName": {env}})
	if n := m["nodes"].([]any)[1].(map[string]any); n["nodeGroup"] != "sqldb" || n["restarts"] != float64(1) {
		t.Errorf("sqldb node after restart %v", n)
	}

	// An operator-made folder is an environment at once; hidden folders,
	// files and odd names are not.
	fresh := uniqueEnv(t, "new")
	for _, p := range []string{fresh, ".hidden", "bad_name"} {
		if err := os.MkdirAll(filepath.Join(h.root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(h.root, "a-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	envs, err := c.GetEnvs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ids := map[int]bool{}
	for _, e := range envs {
		names = append(names, e.Name)
		for _, n := range e.Nodes {
			if ids[n.ID] {
				t.Errorf("node id %d used twice", n.ID)
			}
			ids[n.ID] = true
		}
	}
	wantNames := []string{env, fresh}
	if fresh < env {
		wantNames = []string{fresh, env}
	}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("GetEnvs names %v, want %v", names, wantNames)
	}
	if _, err := os.Stat(filepath.Join(h.root, fresh, ".jelastic-sim.json")); err != nil {
		t.Errorf("state file of a discovered env: %v", err)
	}
}

func TestExecDetails(t *testing.T) {
	h := newHarness(t, func(c *jelasticsim.Config) {
		c.CmdTimeout = 300 * time.Millisecond
		c.MaxOutput = 1000
	})
	env := uniqueEnv(t, "ex")
	h.makeEnv(env)
	c := h.client(simToken)
	ctx := context.Background()
	info, err := c.GetEnvInfo(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	sqldb, _ := info.Master("sqldb")

	t.Run("stops at the first failing command", func(t *testing.T) {
		_, err := c.ExecCmdByGroup(ctx, env, "cp", "echo one", "exit 7", "touch must-not-exist")
		var e *jelastic.Error
		if !errors.As(err, &e) || e.ExitStatus() != 7 || e.Results[0].Out != "one\n" {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Stat(filepath.Join(h.root, env, "must-not-exist")); !os.IsNotExist(err) {
			t.Error("a command after the failing one ran")
		}
	})
	t.Run("by id on the sqldb node", func(t *testing.T) {
		res, err := c.ExecCmdByID(ctx, env, sqldb.ID, `echo "$JELASTIC_NODE_GROUP $JELASTIC_NODE_ID"`)
		if err != nil {
			t.Fatal(err)
		}
		if want := "sqldb " + strconv.Itoa(sqldb.ID) + "\n"; res[0].Out != want || res[0].NodeID != sqldb.ID {
			t.Errorf("out %q node %d, want %q", res[0].Out, res[0].NodeID, want)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		_, err := c.ExecCmdByGroup(ctx, env, "cp", "sleep 30")
		var e *jelastic.Error
		if !errors.As(err, &e) || e.ExitStatus() != 124 || !strings.Contains(e.Results[0].ErrOut, "command stopped") {
			t.Errorf("err = %v, want exit status 124 and a note", err)
		}
	})
	t.Run("output is capped", func(t *testing.T) {
		res, err := c.ExecCmdByGroup(ctx, env, "cp", "head -c 5000 /dev/zero | tr '\\0' x")
		if err != nil {
			t.Fatal(err)
		}
		out := res[0].Out
		if !strings.HasPrefix(out, strings.Repeat("x", 1000)+"\n[jelastic-sim: output truncated, 4000 more bytes dropped]") {
			t.Errorf("capped output %q...", out[:min(len(out), 80)])
		}
	})
	for _, tt := range []struct {
		name string
		form map[string][]string
		want int
	}{
		{"unknown group", map[string][]string{"nodeGroup": {"storage"}, "commandList": {`[{"command":"true"}]`}}, 4},
		{"unknown node id", map[string][]string{"nodeId": {"1"}, "commandList": {`[{"command":"true"}]`}}, 4},
		{"commandList not JSON", map[string][]string{"nodeGroup": {"cp"}, "commandList": {"true"}}, 3},
		{"empty command", map[string][]string{"nodeGroup": {"cp"}, "commandList": {`[{"command":" "}]`}}, 3},
		{"single object", map[string][]string{"nodeGroup": {"cp"}, "commandList": {`{"command":"echo","params":"hi"}`}}, 0},
		{"no group", map[string][]string{"commandList": {`[{"command":"true"}]`}}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := map[string][]string{"session": {simToken}, "envName": {env}}
			for k, v := range tt.form {
				form[k] = v
			}
			method := "execcmdbygroup"
			if _, ok := tt.form["nodeId"]; ok {
				method = "execcmdbyid"
			}
			if m := h.raw("POST", "/1.0/environment/control/rest/"+method, form); result(m) != tt.want {
				t.Errorf("result %d (%v), want %d", result(m), m["error"], tt.want)
			}
		})
	}
}

func TestFileReadWrite(t *testing.T) {
	h := newHarness(t, nil)
	env := uniqueEnv(t, "fi")
	h.makeEnv(env)
	c := h.client(simToken)
	ctx := context.Background()

	body, err := c.ReadFile(ctx, env, "cp", "/var/www/webroot/ROOT/config.php")
	if err != nil || !strings.Contains(body, "$CFG->dbname") {
		t.Fatalf("ReadFile config.php = %q, %v", body, err)
	}
	newCfg := "<?php\n$CFG->dbname = 'staging';\n"
	if err := c.WriteFile(ctx, env, "cp", "/var/www/webroot/ROOT/config.php", newCfg); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(h.root, env, "www/config.php")); string(b) != newCfg {
		t.Errorf("config.php after WriteFile %q", b)
	}
	if err := c.WriteFile(ctx, env, "cp", "/moodledata/new/dir/note.txt", "hello"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(h.root, env, "moodledata/new/dir/note.txt")); string(b) != "hello" {
		t.Errorf("note.txt %q", b)
	}
	// Paths cannot leave the environment folder.
	outside := filepath.Join(filepath.Dir(h.root), "outside-"+env)
	if err := os.WriteFile(outside, []byte("not yours"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadFile(ctx, env, "cp", "../../"+filepath.Base(outside)); jelastic.Code(err) != jelastic.CodeEntityNotFound {
		t.Errorf("read outside the folder: %v, want 4", err)
	}
	if _, err := c.ReadFile(ctx, env, "cp", "/.jelastic-sim.json"); jelastic.Code(err) != jelastic.CodeInvalidParameter {
		t.Errorf("read of the state file: %v, want 3", err)
	}
	if _, err := c.ReadFile(ctx, env, "storage", "/www/config.php"); jelastic.Code(err) != jelastic.CodeEntityNotFound {
		t.Errorf("read on a missing node group: %v, want 4", err)
	}
}

func TestConcurrentClonesGetDistinctNodes(t *testing.T) {
	h := newHarness(t, nil)
	src := uniqueEnv(t, "cc")
	h.makeEnv(src)
	c := h.client(simToken)
	ctx := context.Background()
	dsts := []string{src + "-c", src + "-d"}
	errs := make(chan error, len(dsts)+1)
	for _, dst := range dsts {
		go func() {
			_, err := c.CloneEnv(ctx, src, dst)
			errs <- err
		}()
	}
	go func() {
		_, err := c.GetEnvs(ctx)
		errs <- err
	}()
	for range len(dsts) + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	envs, err := c.GetEnvs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]string{}
	for _, e := range envs {
		for _, n := range e.Nodes {
			if other, dup := seen[n.ID]; dup {
				t.Errorf("node id %d in %s and %s", n.ID, other, e.Name)
			}
			seen[n.ID] = e.Name
		}
	}
	if len(envs) != 3 || len(seen) != 6 {
		t.Errorf("%d envs with %d distinct nodes, want 3 and 6", len(envs), len(seen))
	}
}
