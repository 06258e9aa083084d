// Package state keeps the durable run records of mbackup serve: one small
// JSON file per scheduled job in the state folder (config state_dir), with
// the last start, end, result and error, the last success and the number
// of consecutive failures, and whether operators were told of a failure
// that has not recovered yet.
//
// The records outlive the process, so `mbackup status` (another process)
// shows failures, also after the service restarted, and a restarted service
// neither repeats a failure notification nor forgets to send the recovery.
//
// Every write is crash safe: a temporary file in the same folder, fsynced,
// renamed over the old record, and the folder fsynced. A reader therefore
// sees the old record or the new one, never half of one.
package state
