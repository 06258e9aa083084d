package main

import "github.com/spf13/cobra"

// commands lists every subcommand; each lives in its own cmd_*.go file.
func (a *app) commands() []*cobra.Command {
	return []*cobra.Command{
		a.initCommand(),
		a.backupCommand(),
		a.snapshotsCommand(),
		a.lsCommand(),
		a.restoreCommand(),
		a.stagingCommand(),
		a.forgetCommand(),
		a.pruneCommand(),
		a.checkCommand(),
		a.keyCommand(),
		a.repairCommand(),
		a.serveCommand(),
		a.statusCommand(),
		a.muninCommand(),
		a.versionCommand(),
	}
}
