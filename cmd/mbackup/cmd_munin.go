package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/mbackup/mbackup/cmd/internal/status"
)

func (a *app) muninCommand() *cobra.Command {
	var margin time.Duration
	cmd := &cobra.Command{
		Use:   "munin [config|autoconf]",
		Short: "A Munin plugin: backup age and size per environment",
		Long: `Print the values of a Munin (multigraph) plugin: mbackup_age, the hours
since each environment's last successful backup, with warning at the
overdue age (schedule period plus --margin) and critical one period later;
and mbackup_size, the size of each environment's newest snapshot.
"config" prints the graph configuration, "autoconf" says yes.

Install it on the backup host as a plugin that calls this command:

  printf '#!/bin/sh\n#%%# capabilities=multigraph\nexec /usr/local/bin/mbackup munin "$@"\n' \
      > /etc/munin/plugins/mbackup && chmod 755 /etc/munin/plugins/mbackup

and, in /etc/munin/plugin-conf.d/mbackup, run it as a user that can read
the configuration, the repository password and the state folder:

  [mbackup]
  user mbackup
  env.MBACKUP_CONFIG /etc/mbackup/mbackup.yaml`,
		Args:      nargs(cobra.MaximumNArgs(1)),
		ValidArgs: []string{"config", "autoconf"},
		RunE: func(cmd *cobra.Command, args []string) error {
			mode := ""
			if len(args) == 1 {
				mode = args[0]
			}
			switch mode {
			case "autoconf":
				_, err := a.stdout.Write([]byte("yes\n"))
				return err
			case "config":
				// Only the schedules matter: no need to open the repository.
				envs, err := a.fleetStatus(cmd.Context(), margin, false)
				if err != nil {
					return err
				}
				return status.WriteMuninConfig(a.stdout, envs, margin)
			case "":
				envs, err := a.fleetStatus(cmd.Context(), margin, true)
				if err != nil {
					return err
				}
				return status.WriteMuninValues(a.stdout, envs)
			default:
				return usagef("munin: unknown argument %q: use config or autoconf, or nothing for the values", mode)
			}
		},
	}
	cmd.Flags().DurationVar(&margin, "margin", status.DefaultMargin, "added to the schedule period for the warning level")
	return cmd
}
