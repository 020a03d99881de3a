// Package drains delivers every channel's stream to its drains: HTTP(S)
// endpoints (logplex-1 batches) and syslog receivers over TCP or TLS
// (octet-counted RFC 5424 frames).
//
// A Manager runs one worker per drain that this node owns. A worker is a
// cursor over the channel log (channels.Log): it reads from its stored
// position, encodes a batch, delivers it, and moves its position only when
// the endpoint acknowledged the batch (HTTP 2xx; for syslog, a completed
// write). Workers only read the log, so a slow or dead endpoint never slows
// ingest, other drains or tails, and a worker's memory is one batch buffer.
//
// # Delivery guarantees
//
// Delivery is at-least-once inside the retention window, in order, one
// request in flight per drain:
//
//   - A failing endpoint (HTTP 408, 429, 5xx, transport errors, timeouts;
//     syslog connect or write errors) is retried with the same batch (same
//     body, same Logplex-Frame-Id) with exponential backoff and full jitter,
//     without limit. The drain keeps its place; only retention (the log
//     evicting messages) makes it lose messages, and that loss is reported
//     in band as an L10 line with the exact count when delivery resumes.
//   - Any other HTTP status (3xx, 4xx) is permanent for that batch: the batch
//     is counted as dropped (reason "rejected") and reported by the next L10
//     line, as Logplex does.
//   - Logplex-Frame-Id is derived from the drain token, the log epoch, the
//     first offset and the number of records of the batch, so a retry, a
//     restart or another node taking the drain over resends the same id for
//     the same messages and receivers can de-duplicate.
//   - Syslog: a completed write is the acknowledgement. When a write fails
//     the connection is replaced and the whole batch is written again, so a
//     receiver may see again what the dying connection had taken. Bytes a
//     peer's kernel accepted before the peer closed the connection are lost
//     without notice (TCP has no application acknowledgement).
//   - Before each batch is sent, the worker stores (Store.SetDrainCursor)
//     where the batch starts and how many messages it holds
//     (Cursor.Pending). That write also acknowledges the previous batch. A
//     worker that takes the drain over — after a restart, or on another
//     node after the owner died — first re-sends exactly that batch, under
//     the same Logplex-Frame-Id, then continues: duplicates are limited to
//     the unacknowledged batch, and receivers can drop them by id. (The
//     embedded store writes positions to disk at most once a second, so
//     after a crash of a single node up to a second of batches is re-sent,
//     each under its original id.) A position without a batch in flight is
//     stored at most every Config.CursorEvery and when the worker stops. A
//     drain without a stored position starts at the end of the log (the API
//     stores a new drain's position before it answers).
//   - Manager.Shutdown lets every worker deliver what its channel's log
//     holds, then stop; when its context ends first, a batch in flight is
//     finished or abandoned within Config.RequestTimeout. An abandoned batch
//     is sent again after restart.
//   - When a backend loses a channel's history (ReadResult.Reset: a new log
//     epoch) the worker continues at the first message of the new epoch.
//     How much of the old epoch was lost is unknown: it is logged and, apart
//     from what the backend reports as Missed, not in the L10 count.
//   - An L10 count that was not delivered yet when a worker stops is kept in
//     memory for a worker restarted by a URL change. Retention losses are
//     found again by whoever reads from the stored position next (another
//     node, a restarted process); counts of rejected batches not yet
//     reported are lost with the process (they stay in the metrics).
//
// # Differences from Logplex
//
//   - Logplex buffers up to 1024 messages per drain in memory and drops the
//     oldest; Plexus reads from the channel log, whose retention is extended
//     for channels with drains (Config.Retention).
//   - Logplex gives up on an HTTP batch after 3 attempts; Plexus retries
//     temporary failures until retention evicts the data.
//   - HTTPS certificates are verified (Logplex did not); "#insecure" opts out.
//   - TLS certificate failures (syslog+tls and https) add an L14 line to the
//     channel log on the first failure of a streak (Logplex: from the second,
//     tails and history only, and only if the channel had a "heroku" token).
//     Since drains read the channel log, the L14 line also reaches the
//     channel's drains.
//   - Syslog batches are up to 64 KiB per write (Logplex: 4096 bytes).
//   - Messages that cannot be parsed as RFC 5424 are skipped as in Logplex
//     and counted (plexus_drain_dropped_total{reason="unparseable"}).
package drains
