// Package retention decides which snapshots an environment keeps: the keep
// policies of the configuration's retention block and the forget command.
// It is pure: it sees snapshot IDs, times and tags, never a repository.
//
// # Semantics
//
// Apply follows restic's forget --keep-* algorithm (ApplyPolicy in restic's
// internal/data/snapshot_policy.go) rule for rule. Snapshots are walked
// newest first. A snapshot is kept when any rule keeps it:
//
//   - tags: it carries one of the policy's tags ("has tag X"; not counted);
//   - within: it is strictly newer than D before the newest snapshot that is
//     not in the future ("within 7d"); the calendar part of D is subtracted
//     with time.AddDate, so 1d is one calendar day (23 or 25 hours across a
//     DST change) and 1m before March 31 lands on March 3, as in restic;
//   - last, hourly, daily, weekly, monthly, yearly N: it is the newest
//     snapshot of a bucket (an hour, a day, an ISO week starting on Monday,
//     a month, a year; for last, every snapshot is its own bucket) and the
//     rule has kept fewer than N buckets so far. N therefore counts buckets
//     that contain snapshots, however far back they lie: with daily backups
//     that stopped a month ago, daily 7 still keeps seven snapshots.
//     Unlimited (-1) keeps every bucket;
//   - oldest: when the walk reaches the oldest snapshot and a counting rule
//     still has room, that rule keeps it even though its bucket is already
//     used ("oldest daily snapshot"), so that the history kept is as long as
//     the counts allow.
//
// Every kept snapshot carries all the reasons that matched, and for each
// counting rule the ordinal of the bucket it fills (Slot), which the forget
// command prints as e.g. "daily 3, weekly 1".
//
// # Differences from restic
//
//   - Buckets are computed in the configured time zone (the configuration's
//     timezone, e.g. Europe/Zurich), not in the UTC offset stored with each
//     snapshot as restic does. A snapshot stored as 2026-01-31T23:30:00Z is
//     in Zurich's February bucket. Hours are wall-clock hours: on the day
//     clocks go back both 02:xx hours fall into the single 02 bucket, and on
//     the day they go forward there is no 02 bucket at all.
//   - An empty policy keeps every snapshot with the reason "empty policy";
//     restic refuses to run. A missing retention block must never delete
//     backups.
//   - Snapshots in use by a running restore or staging refresh are passed
//     as pinned IDs and kept with the reason "in use"; they do not take a
//     bucket from any rule.
//   - A tag entry is one tag (restic's comma-joined AND lists and the empty
//     tag that matches untagged snapshots are not supported).
//   - Durations accept w (weeks) and Go durations such as 36h or 0s besides
//     restic's 2y5m7d3h; see Duration.
//   - Snapshots with identical times are ordered by ID (the greater ID
//     counts as newer) instead of by their order in the repository listing,
//     so results never depend on listing order.
//   - The within-hourly/daily/... rules and group-by are not provided: a
//     policy applies to the snapshots of one environment.
package retention
