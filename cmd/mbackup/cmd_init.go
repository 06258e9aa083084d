package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/cmd/internal/config"
	"github.com/mbackup/mbackup/engine"
	"github.com/mbackup/mbackup/engine/backend/retry"
	"github.com/mbackup/mbackup/engine/backend/s3"
)

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the repository named in the configuration",
		Long: `Create the repository named in the configuration: a local folder or an
S3 bucket (created when missing). init refuses to touch an existing
repository.`,
		Args: nargs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := a.config()
			if err != nil {
				return err
			}
			pw, err := cfg.RepositoryPassword()
			if err != nil {
				return err
			}
			if len(pw.Value()) < 8 {
				return &usageError{errors.New("the repository password is shorter than 8 characters: choose a longer one (it protects every site's data)")}
			}
			if u := cfg.Repository.URL; u.Kind == config.KindS3 {
				ak, sk, err := cfg.S3Credentials()
				if err != nil {
					return err
				}
				be, err := s3.Open(s3.Config{Endpoint: u.Endpoint, Secure: u.Secure, Bucket: u.Bucket, Prefix: u.Prefix,
					Region: cfg.Repository.S3.Region, AccessKey: ak.Value(), SecretKey: sk.Value()})
				if err != nil {
					return err
				}
				// Retried like every other request: a 503 must not fail init.
				rb := retry.New(be, retry.DefaultPolicy, a.log)
				if err := rb.Do(ctx, "create bucket", func() error { return be.CreateBucket(ctx) }); err != nil {
					return err
				}
			}
			be, err := a.backend(ctx, cfg)
			if err != nil {
				return err
			}
			repo, err := engine.Init(ctx, be, pw.Value(), engine.InitOptions{
				PackSize:    int(cfg.Repository.PackSize),
				Compression: engine.Compression(cfg.Repository.Compression),
			}, a.engineOptions(cfg))
			if err != nil {
				return err
			}
			a.repo = repo
			if a.json {
				return a.printJSON(map[string]string{"id": repo.Config().ID, "location": be.Location()})
			}
			a.printf("created repository %s at %s\n", repo.Config().ID[:8], be.Location())
			return nil
		},
	}
}
