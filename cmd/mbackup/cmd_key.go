package main

import (
	"errors"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/engine/backend"
	"github.com/mbackup/mbackup/engine/blob"
)

func (a *app) keyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key list | add --new-password-file PATH | remove ID",
		Short: "Manage the passwords that open the repository",
		Long: `A repository's master key is stored once per password, in key files.
Several passwords can open the same repository (one per operator, or one
kept in a safe); each can be added and removed without re-encrypting
anything. The configured password opens the repository for these commands.`,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the key files",
		Args:  nargs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, cfg, err := a.repository(ctx)
			if err != nil {
				return err
			}
			pw, err := cfg.RepositoryPassword()
			if err != nil {
				return err
			}
			keys, err := repo.Keys(ctx, pw.Value())
			if err != nil {
				return err
			}
			type keyJSON struct {
				ID       string  `json:"id"`
				Current  bool    `json:"current"`
				Created  *string `json:"created"`
				Hostname string  `json:"hostname,omitempty"`
			}
			out := make([]keyJSON, 0, len(keys))
			for _, k := range keys {
				j := keyJSON{ID: k.ID.String(), Current: k.Opens, Hostname: k.Hostname}
				if k.Opens {
					c := k.Created.In(cfg.Location).Format(time.RFC3339)
					j.Created = &c
				}
				out = append(out, j)
			}
			if a.json {
				return a.printJSON(out)
			}
			for _, k := range out {
				mark, created := " ", "(another password)"
				if k.Current {
					mark, created = "*", *k.Created+" "+k.Hostname
				}
				a.printf("%s %s  %s\n", mark, k.ID[:8], created)
			}
			return nil
		},
	}
	var newPasswordFile string
	add := &cobra.Command{
		Use:   "add --new-password-file PATH",
		Short: "Add a password",
		Args:  nargs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if newPasswordFile == "" {
				return usagef("key add needs --new-password-file PATH (a file holding the new password, mode 0600)")
			}
			data, err := os.ReadFile(newPasswordFile)
			if err != nil {
				return &usageError{err}
			}
			pw := strings.TrimSuffix(string(data), "\n")
			if len(pw) < 8 {
				return usagef("the new password in %s is shorter than 8 characters", newPasswordFile)
			}
			ctx := cmd.Context()
			repo, _, err := a.repository(ctx)
			if err != nil {
				return err
			}
			id, err := repo.AddKey(ctx, pw)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"id": id.String()})
			}
			a.printf("added key %s\n", id.Short())
			return nil
		},
	}
	add.Flags().StringVar(&newPasswordFile, "new-password-file", "", "file holding the new password")
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a key file (not the last one)",
		Args:  nargs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, _, err := a.repository(ctx)
			if err != nil {
				return err
			}
			keys, err := repo.Keys(ctx, "")
			if err != nil {
				return err
			}
			var match []blob.ID
			for _, k := range keys {
				if strings.HasPrefix(k.ID.String(), strings.ToLower(args[0])) {
					match = append(match, k.ID)
				}
			}
			if len(match) != 1 {
				return usagef("key %q matches %d key files: give a unique prefix (see mbackup key list)", args[0], len(match))
			}
			if err := repo.RemoveKey(ctx, match[0]); err != nil {
				if errors.Is(err, backend.ErrNotExist) {
					return &usageError{err}
				}
				return err
			}
			a.printf("removed key %s\n", match[0].Short())
			return nil
		},
	}
	cmd.AddCommand(list, add, remove)
	return cmd
}
