package staging

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/mbackup/mbackup/restore"
	"github.com/mbackup/mbackup/restore/jelastic"
)

// plan fills the report of a dry run: it reads (environment info,
// config.php, the copy's database for the restore plan) and changes
// nothing.
func (r *runner) plan(ctx context.Context, info *jelastic.EnvInfo, exists, clone bool) error {
	p := &r.p
	r.rep.Status = StatusPlanned
	planned := func(step string, changes ...string) {
		r.rep.Steps = append(r.rep.Steps, Step{Name: step, Status: StepPlanned, Changes: changes})
	}
	if exists {
		planned("inspect", fmt.Sprintf("Jelastic environment %s exists (%s)", p.Copy.JelasticEnv, info.Status))
	} else {
		planned("inspect", fmt.Sprintf("Jelastic environment %s does not exist", p.Copy.JelasticEnv))
	}
	if exists && p.Reclone {
		planned("delete", "delete Jelastic environment "+p.Copy.JelasticEnv+" with its database and files")
	}
	if clone {
		planned("clone", fmt.Sprintf("clone %s to %s (the platform may pause %s briefly) and wait until it runs",
			p.Production.JelasticEnv, p.Copy.JelasticEnv, p.Production.JelasticEnv))
	} else if info.Status != jelastic.StatusRunning {
		planned("start", fmt.Sprintf("start %s (it is %s)", p.Copy.JelasticEnv, info.Status))
	}
	if p.Settings.WWWRoot == "" {
		// A side restore's URL is the clone's platform domain, which
		// follows the production domain's pattern.
		if pi, err := p.Platform.GetEnvInfo(ctx, p.Production.JelasticEnv); err == nil {
			if rest, ok := strings.CutPrefix(pi.Domain, p.Production.JelasticEnv+"."); ok {
				p.Settings.WWWRoot = cloneWWWRoot(r.prodWWW, p.Copy.JelasticEnv+"."+rest)
			}
		}
	}
	r.rep.WWWRoot = p.Settings.WWWRoot
	planned("config.php", r.planConfig(ctx, clone)...)
	planned("maintenance", "write "+maintenanceFile+" into "+p.Copy.Moodledata+" for the whole run")

	restoreStep := []string{fmt.Sprintf("replay snapshot %s taken %s into database %s and moodledata %s (excluded: %s); the previous copy's database is dropped",
		p.Snapshot.ID().Short(), p.Snapshot.Time.UTC().Format("2006-01-02 15:04:05 UTC"), p.Copy.DB, p.Copy.Moodledata, strings.Join(p.Exclude, ", "))}
	if !clone {
		ro := p.Restore
		ro.DryRun = true
		db := p.Copy.DB
		rrep, err := restore.InPlace(ctx, p.Repo, p.Snapshot, restore.Target{Name: r.targetName(), DB: &db, Moodledata: p.Copy.Moodledata, Exclude: p.Exclude}, ro)
		if err != nil {
			restoreStep = append(restoreStep, "cannot plan the replay in detail: "+err.Error())
		} else {
			r.rep.Restore = rrep
			if f := rrep.Files; f != nil {
				restoreStep = append(restoreStep, fmt.Sprintf("moodledata: %d files, write %d, remove %d, unchanged %d", f.Files, len(f.Write), len(f.Delete), f.Unchanged))
			}
		}
	}
	planned("restore", restoreStep...)
	planned("sanitize", sanitizePlan(p.Settings)...)
	planned("config.php (check)", "read config.php back and rewrite it if anything changed")
	planned("moodledata", "remove muc/config.php and production's saml2 key pair; empty "+strings.Join(cacheDirs, "/, ")+"/")
	planned("restart", "restart the cp (application server) nodes of "+p.Copy.JelasticEnv)
	planned("maintenance off", "remove "+maintenanceFile)
	return nil
}

// planConfig says how config.php would change: the copy's file as it is,
// or, for a fresh clone, production's, which the clone copies unchanged.
func (r *runner) planConfig(ctx context.Context, clone bool) []string {
	p := &r.p
	var (
		src   []byte
		err   error
		where = r.cfg.String()
	)
	switch {
	case !clone:
		src, err = r.cfg.read(ctx)
	case p.Production.ConfigPHP != "":
		where = p.Production.ConfigPHP + " (as the clone will have it)"
		src, err = os.ReadFile(p.Production.ConfigPHP)
	default:
		where = p.Production.JelasticEnv + ":" + p.RemoteConfigPHP + " (as the clone will have it)"
		var s string
		s, err = p.Platform.ReadFile(ctx, p.Production.JelasticEnv, "cp", p.RemoteConfigPHP)
		src = []byte(s)
	}
	head := "rewrite " + r.cfg.String()
	if err != nil {
		return []string{head, fmt.Sprintf("cannot read %s now: %v", where, err)}
	}
	if p.Settings.WWWRoot == "" {
		return []string{head, "wwwroot: the clone's platform domain"}
	}
	o := p.Settings
	if f, perr := parseConfigPHP(src); perr == nil {
		if dr, ok := f.stringValue("dataroot"); ok && overlaps(dr, p.Production.Moodledata) {
			o.DataRoot = p.Copy.Moodledata
		}
	}
	_, changes, err := RewriteConfigPHP(src, o)
	if err != nil {
		return []string{head, fmt.Sprintf("cannot rewrite %s: %v", where, err)}
	}
	if len(changes) == 0 {
		return []string{head + ": nothing to change"}
	}
	return append([]string{head + ", starting from " + where + ":"}, changes...)
}

// sanitizePlan describes what Sanitize does.
func sanitizePlan(o Settings) []string {
	mail := "e-mail off: noemailever = 1"
	if o.DivertEmailsTo != "" {
		mail = "e-mail diverted to " + o.DivertEmailsTo + " (divertallemailsto)"
	}
	return []string{
		"in one transaction on " + o.prefix() + "* tables:",
		mail,
		fmt.Sprintf("disable every scheduled task except %s (marked customised)", strings.Join(o.allowedTasks(), ", ")),
		"delete queued adhoc tasks, sessions, web service tokens, user private keys, hub registrations",
		"disable the email and airnotifier processors, web services, the mobile service, inbound mail",
		"blank " + strings.Join(blankedConfig, ", ") + " and plugin credentials (auth_ldap/bind_pw, enrol_database/dbhost, dbpass, tool_objectfs keys, *password*, *secret*, *apikey*, *token*)",
		"disable payment accounts and gateways and OAuth 2 issuers",
		"new siteidentifier",
	}
}
