// Package router is the ingest hot path: frame → token → channel → append.
//
// An Ingester collects the messages of one connection read (or one HTTP
// request), finds each message's token with a byte scan, looks the token up
// in memory, replaces it by the token's name ("cooking") while copying the
// message into a per-channel batch, and appends all batches to the channel
// log in one call. RFC 3164 lines are first rewritten as RFC 5424 into a
// buffer the Ingester reuses. In steady state it allocates nothing per
// message, RFC 5424 or RFC 3164 (TestIngestAllocs holds both), and it
// imports neither HTTP nor Redis.
package router
