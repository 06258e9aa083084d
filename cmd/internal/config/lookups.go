package config

import (
	"fmt"
	"slices"
)

// setLookups tells every SecretSource where it was configured and how to
// read environment variables, so Read can report and resolve on its own.
func (d *decoder) setLookups(cfg *Config) {
	for _, s := range secretSources(cfg) {
		s.cfgFile, s.lookup = d.file, d.lookup
	}
}

func secretSources(cfg *Config) []*SecretSource {
	srcs := []*SecretSource{&cfg.Repository.Password, &cfg.Repository.S3.AccessKey, &cfg.Repository.S3.SecretKey}
	if cfg.Jelastic != nil {
		srcs = append(srcs, &cfg.Jelastic.Token)
	}
	if cfg.Notify.Email != nil {
		srcs = append(srcs, &cfg.Notify.Email.Password)
	}
	for _, e := range cfg.envs {
		srcs = append(srcs, &e.dbPassword)
		if e.Staging != nil {
			srcs = append(srcs, &e.Staging.dbPassword)
		}
	}
	return srcs
}

// warnings lists secret files others may read and database URLs that embed
// a password.
func (d *decoder) warnings(cfg *Config) []string {
	var out []string
	for _, s := range secretSources(cfg) {
		if s.File == "" {
			continue
		}
		if w := modeWarning(s.File); w != "" && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	for _, n := range cfg.EnvNames() {
		e := cfg.envs[n]
		if !e.Database.password.IsZero() {
			out = append(out, fmt.Sprintf("warning: %s: environments.%s.database embeds a password (move it to database_password_file)", d.file, n))
		}
		if e.Staging != nil && !e.Staging.Database.password.IsZero() {
			out = append(out, fmt.Sprintf("warning: %s: environments.%s.staging.database embeds a password (move it to database_password_file)", d.file, n))
		}
	}
	return out
}
