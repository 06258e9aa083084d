// Package notify tells operators when a scheduled job starts failing and
// when it recovers: a JSON POST to a webhook and an e-mail through SMTP
// (config notify:). The service calls it once per state change, never per
// retry; deciding what is a change is the caller's business.
//
// Webhook URLs and header values, and the SMTP password, are secrets: they
// are never part of an error or log line. Errors from the HTTP client,
// which quote the URL, are unwrapped to their cause.
package notify
