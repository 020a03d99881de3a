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
// ch:<id>:log:idx (small index stream), ch:<id>:log:meta (hash) and
// ch:<id>:log:keys (idempotency keys, sorted set); see logKeys.
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
// messages (a keyed batch: one of its own, below), many channels per
// pipelined round trip. A write that fails is
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
// # Idempotency keys
//
// A batch with a key (channels.Batch.Key, from the Idempotency-Key header)
// is stored once per channel within LogConfig.DedupWindow, by every node
// together. The append script does the check and the store in one step:
// an entry carrying a key digest (the first 16 bytes of its SHA-256) whose
// digest is in ch:<id>:log:keys (a sorted set scored by the time the key
// was stored, Unix µs on the writing node's clock) within the window is
// not stored, and its sequence number is recorded as applied all the same
// (entries after it in the round are not held back); otherwise the entry
// is stored and its digest added. Each keyed append prunes the set of
// keys older than the window and of the oldest beyond DedupMaxKeys; the
// set expires with the log, and goes with it (Delete, a new epoch), so
// its memory is bounded per channel and in time.
//
// A keyed batch is one entry of its own: the writer never merges it with
// other messages nor splits it at MaxEntryMessages or MaxEntryBytes (its
// size is bounded by the HTTP body limit), so the key covers exactly the
// batch and an entry lands whole or not at all. Splitting it into parts
// with a key each was rejected: the parts depend on the entry bounds of
// the node that cut them, so two nodes (or a node restarted with other
// bounds) could cut a retry differently and store parts twice or not at
// all. Its messages keep their write sequence numbers, so a retry of the
// round (or a replay) is skipped by the sequence check before the key is
// looked at. The spool records the digest and the batch's message count
// with each of its messages: a replay rebuilds the same entry, and drops
// a keyed batch a torn tail cut (it was not acknowledged; storing a part
// under the key would make the client's retry store nothing of the rest).
// AppendDurable of a repeated key returns once its own entry was seen by
// the script, when the first copy is in Redis (or, while the shard is
// failing, once the repeat is fsynced in the spool: the script sorts the
// copies out when the shard is back).
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
