// Package channels is the domain of Plexus: channels, tokens, drains,
// credentials and sessions, their validation, and the two contracts every
// backend implements:
//
//   - Store holds configuration (channels, tokens, drains, credentials,
//     sessions, drain cursors). Reads on the hot path (token lookup,
//     credential lookup) are served from memory and never block.
//   - Log holds every channel's bounded, append-only message log. Ingest
//     appends; sessions, tails and drains are cursors that read from an
//     offset and wait for new appends.
//
// This package imports no other Plexus package. The embedded backend lives
// here too (Open a data directory); the Redis backend lives in package redis.
package channels
