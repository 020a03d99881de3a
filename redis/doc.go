// Package redis is the Redis backend of Plexus: a channels.Store whose
// configuration lives in Redis (Logplex-compatible keys) with an in-memory
// copy on every node, a channels.Log whose channel logs are Redis streams
// sharded over several servers, a node registry and drain leases.
//
// Constructors: OpenStore(ctx, StoreConfig), OpenLog(ctx, LogConfig),
// OpenNodes(ctx, NodesConfig), OpenLeases(ctx, LeasesConfig), and
// NewCluster, the channels.Cluster made of a node's registration, leases
// and log health. Scripts use keys they compute, so servers must be
// standalone Redis (not Redis Cluster).
//
// # Configuration
//
// Records use Logplex's keys: ch:<id>:data {name, flags}, tok:<token>:data
// {ch, name}, drain:<id>:data {ch, token, url, state}, cred:<id> {pass,
// name, full_api, channel}, session:<uuid> (the raw body, with an expiry),
// channel_index and drain_index (INCR). Plexus adds ch:<id>:tokens and
// ch:<id>:drains (per-channel indexes for atomic checks),
// plexus:drain_cursors, plexus:config:version and the pub/sub channel
// plexus:config (see store_scripts.go). Sessions and drain cursors are read
// from Redis; everything else from the node's in-memory copy.
//
// # Nodes and leases
//
// plexus:nodes (sorted set by heartbeat, Redis time) and plexus:node:<id>
// (hash with expiry) list live nodes. plexus:lease:drain:<id> holds the id
// of the node delivering a drain (SET NX PX, renewed); see Leases.
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
// Appends are admitted to a bounded buffer per shard (on disk too with a
// spool, below) and written by one writer goroutine per shard, every
// FlushInterval or when FlushMessages are pending: one EVALSHA per (channel, flush) carrying up to MaxEntryMessages
// messages, many channels per pipelined round trip. A write that fails is
// retried until it succeeds; a write sequence number per node and channel,
// stored in the meta hash, makes a retry of a write that did land a no-op,
// so a timeout never duplicates messages. The entries of one channel in a
// round are applied in order: an entry is refused (ORDER) until the one
// before it is acknowledged, also when the log does not exist, so a retry
// is never taken for a write that landed when only a later one did.
//
// A message's write sequence number is given when it is admitted:
// consecutive per channel while the channel has unwritten messages (and
// then above every earlier one, near the time in µs), an entry carrying
// its last message's. The append script skips the messages of an entry up
// to the writer's stored sequence number, so an entry cut differently from
// the one that landed (a replay, below) applies only what is new.
//
// # Spool
//
// With LogConfig.SpoolDir the buffer is durable (spool.go): each shard
// appends every admitted message (with its channel, ingest time and write
// sequence number, CRC'd) to its current segment file under
// SpoolDir/shard-<i>/, whose header names the writer field. A syncer
// goroutine per shard hands the records to the file as they come and
// fsyncs them every SpoolSyncInterval, or at once for AppendDurable
// callers while the shard is failing (they share fsyncs). Segments are
// deleted when every message in them is written (or kept at Close when
// not). AppendDurable returns when its messages are written to Redis or,
// while the shard is failing, fsynced. OpenLog queues what segments of an
// earlier process hold ahead of anything new (under that process's writer
// field and sequence numbers, in rounds of their own), so a killed node
// that restarts writes what it accepted once; until then Healthy is false
// and reads of those channels wait for them (the read barrier). A torn
// or corrupt record ends its segment (counted and logged). Memory stays
// bounded by BufferBytes and disk by SpoolBytes: Append waits while
// either is full.
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
