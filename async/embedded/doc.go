// Package embedded is Ferry's single-node durable task queue: an
// async.Queue stored in Pebble on local disk, with the scheduling state in
// memory.
//
// # Why Pebble, and how writes are made durable
//
// Pebble is an LSM store with a write-ahead log, pure Go, and it locks its
// directory, so exactly one process owns a queue. Enqueue, Complete, Retry,
// Release and Cancel commit with pebble.Sync: the WAL is fsynced before they
// return. That does not cost one fsync per call: Pebble's commit pipeline
// queues concurrent synced batches and its WAL writer syncs them together
// (group commit), so N concurrent Enqueues share a few fsyncs
// (BenchmarkEnqueueParallel against BenchmarkEnqueueSerial shows the gain).
// Lease, lease expiry and UpdateDelivery commit with pebble.NoSync: a lost
// lease record only means the task runs again, which recovery does anyway;
// a lost delivery update means the delivery is made again (at least once).
//
// # Key layout
//
// A task's record is binary (async.AppendRecord: a version byte, then
// varints), without the payload, which has a key of its own written once at
// enqueue: a lease, retry or outcome rewrites a record of some tens of
// bytes, never the payload. Tenants inside keys are prefixed by their
// 16-bit length, times are 8 big-endian bytes that sort like time.
//
//	f                                         the directory's format (2)
//	t <id>                                    task record (binary, no payload)
//	p <id>                                    task payload
//	l <tenant> <created> <id>                 listing index → function name; List walks it backwards
//	i <tenant> <key>                          idempotency key → {id, expires_at}
//	x <at> 't' <id>                           a finished task expires at <at>
//	x <at> 'i' <tenant> <key>                 an idempotency key expires at <at>
//	s <trigger>                               "1": the trigger is paused (no key: it runs)
//
// The sweeper reads only the due prefix of the x range, so retention never
// scans tasks.
//
// Format 1 (Ferry before the binary record) kept each task as one JSON
// record, payload inline, and had no f key. Open migrates such a directory
// in place while it scans the tasks (the f key is written last, synced), and
// refuses one whose f key or record version it does not know, saying so,
// rather than misread it.
//
// # Scheduling
//
// Open scans the tasks once (start-up is not the hot path) and rebuilds:
// per lane a min-heap of queued tasks by (ReadyAt, enqueue order); the
// tenants with queued tasks in a ring, visited round-robin from a cursor that
// moves past the tenant served last, and within a tenant its lanes
// round-robin; a heap of running leases by expiry for the reaper; the set of
// finished tasks with pending deliveries; the live idempotency keys. Lease,
// Stats and the reaper never read Pebble to decide, and Lease costs
// O(tenants + lanes), never O(tasks).
//
// # Leases and crashes
//
// Every lease increments the task's fencing token (Task.Lease); Complete,
// Retry and Release with another token get async.ErrLeaseLost. Run requeues
// tasks whose lease expired (Recoveries+1, Attempts unchanged). At Open every
// task still marked running belongs to a dead process and is requeued the
// same way, so a kill -9 neither loses a task nor spends its retry budget.
//
// Writes of one task are serialised by a striped lock held across its
// read-modify-write and commit, so they reach Pebble in the order they were
// decided, while writes of different tasks still share group commits.
package embedded
