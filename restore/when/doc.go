// Package when turns the --at WHEN expressions of restore and staging
// refresh into an instant, picks the snapshot taken at or before it, and
// formats snapshot ages. It is pure: the clock and the time zone are
// parameters.
//
// # Expressions
//
// Parse accepts, case-insensitively and ignoring surrounding and repeated
// spaces:
//
//	latest                     the newest snapshot, whatever its time
//	now                        the current instant
//	today, yesterday           the end of that calendar day
//	2026-10-25                 the end of that calendar day
//	2026-10-25 02:30           the end of that minute (a T may replace the space)
//	2026-10-25 02:30:15        the end of that second
//	2026-10-25T02:30:15+02:00  RFC 3339; the end of that second, or exactly
//	                           the instant when a fraction is given
//	30m ago, 3h ago, 90s ago, 1h30m ago, 2 days ago, 1 week ago, 2d ago
//
// Calendar days, local times and relative days and weeks are reckoned in
// the configured time zone (the configuration's timezone).
//
// A date, a minute or a second names a period, and the instant is the last
// nanosecond of that period: "2026-10-25" includes every snapshot taken that
// day and "2026-10-25 02:00:12" includes the snapshot listed as 02:00:12
// even though it was taken at 02:00:12.734. Ends of days are computed as the
// start of the next day minus a nanosecond, so days of 23 or 25 hours end
// correctly.
//
// Local times that a DST change makes nonexistent or ambiguous are resolved
// like java.time's ZonedDateTime: a time in a spring-forward gap is shifted
// forward by the length of the gap (2026-03-29 02:30 in Europe/Zurich is
// 03:30 CEST), and of a time that occurs twice the earlier instant is taken
// (2026-10-25 02:30 is 02:30 CEST, not CET); write RFC 3339 with an offset
// to choose the other one.
//
// In relative expressions, w (week, weeks) and d (day, days) are calendar
// units: "1 day ago" at 12:00 is 12:00 the day before even when that day
// had 23 or 25 hours; h, m (minutes here, there are no months) and s are
// exact durations, subtracted after the calendar units. Units are written
// largest first, each at most once.
//
// # Selection
//
// Select returns the newest item taken at or before the instant. Items with
// the same time are ordered by ID, the greater ID counting as the newer, the
// same rule the retention package uses. When no item qualifies the error is
// a *NoMatchError naming the oldest item, and an empty list yields
// ErrNoSnapshots.
package when
