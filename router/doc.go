// Package router is the ingest hot path: frame → token → channel → append.
//
// An Ingester collects the messages of one connection read (or one HTTP
// request), finds each message's token with a byte scan, looks the token up
// in memory, replaces it by the token's name ("cooking") while copying the
// message into a per-channel batch, and appends all batches to the channel
// log in one call. It allocates nothing per message in steady state and
// imports neither HTTP nor Redis.
package router
