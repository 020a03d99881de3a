// Package redis is the Redis backend of Plexus: a channels.Store whose
// configuration lives in Redis (Logplex-compatible keys) with an in-memory
// copy on every node, a channels.Log whose channel logs are Redis streams
// sharded over several servers, a node registry and drain leases.
//
// # Channel logs
//
// A channel's log lives on one shard, chosen with Logplex's redis_shard
// rule (md5 of the channel id, interval split over the shard URLs sorted
// by fragment or URL). Its keys are ch:<id>:log (stream of entries),
// ch:<id>:log:idx (small index stream) and ch:<id>:log:meta (hash); see
// logKeys.
//
// Offsets map to stream IDs: an entry holds several consecutive messages
// and its ID is "<last offset>-<count>", so offsets are dense per channel
// (1, 2, 3, ... in an epoch) while a stream entry carries a whole batch.
// Offsets are assigned by a Lua script (appendScript) that reads the
// channel's next offset, adds the entry with the explicit ID, and trims,
// atomically: nodes writing the same channel interleave whole entries and
// never share an offset. Reading offset o is "XRANGE ch:<id>:log o +"
// (the first entry returned contains o); trimming to first offset f is
// "XTRIM MINID f".
//
// Appends are admitted to a bounded buffer per shard and written by one
// writer goroutine per shard, every FlushInterval or when FlushMessages are
// pending: one EVALSHA per (channel, flush) carrying up to MaxEntryMessages
// messages, many channels per pipelined round trip. A write that fails is
// retried until it succeeds; a write sequence number per node and channel,
// stored in the meta hash, makes a retry of a write that did land a no-op,
// so a timeout never duplicates messages.
//
// An epoch id is stored in the meta hash when a log is created. When a
// shard loses its data (restarted empty), the next append creates a new
// epoch and readers holding cursors of the old one get ReadResult.Reset.
//
// Followers (Wait) are served by one goroutine per shard blocking in XREAD
// on the index streams of every waited channel; reads go through the
// stream, so a follower sees every message in order, without gaps or
// duplicates.
package redis
