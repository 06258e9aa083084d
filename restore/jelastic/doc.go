// Package jelastic is a small client for the Jelastic / Virtuozzo Application
// Platform REST API: the subset mbackup needs to inspect environments, clone
// them for staging, start, stop and delete them, and run shell commands on
// their nodes.
//
// Every call is an application/x-www-form-urlencoded POST to
// <base>/<group>/<service>/rest/<method> carrying the access token (a signin
// session or a personal access token) in the session parameter. The response
// is always decoded as the platform envelope {result, error, reason, source}
// first: result != 0 becomes an *Error, which callers inspect with
// errors.As or the IsNotExist, IsAuth and IsCommandFailed helpers. HTTP
// failures, non-200 statuses and bodies that are not an envelope are
// *TransportError values; only those are retried, never an API error.
//
// The token is sent only in the request body and never appears in an error,
// a log record or a URL produced by this package.
//
// The platform documentation is thin, so decoding is lenient: field names
// match case-insensitively (nodeid and nodeId, ismaster and isMaster),
// numbers may arrive as strings, unknown fields are ignored and payloads
// wrapped in "response":{...} are unwrapped.
package jelastic
