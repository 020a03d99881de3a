// Package api is the HTTP side of Plexus.
//
// Server.APIHandler serves the management API (Logplex's legacy v1/v2
// routes and its v3 REST routes on one listener), the credentials API,
// session creation and session streaming (plain Logplex streams and
// Server-Sent Events), and GET /metrics. Server.LogsHandler serves the HTTP
// log input (POST /logs) and its healthcheck.
//
// Status codes, bodies and content types follow Logplex (the routes are
// described in docs/api.md, the deliberate differences in its "Differences
// from Logplex" section). Where Plexus differs, the handler says so in a
// comment starting with "Logplex:".
//
// Sessions and tails are cursors over the channel log: the history is read
// up to a cursor and the tail continues from exactly that cursor, so there
// is no gap and no duplicate between history and live messages. A tail pulls
// from the log at its own pace: a slow client only slows itself, and when it
// falls out of retention it is told exactly how many messages it missed.
package api
