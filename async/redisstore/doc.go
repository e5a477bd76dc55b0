// Package redisstore is Ferry's shared store for many nodes: an
// async.Queue on Redis (go-redis/v9), and the flow-control state nodes
// share beside it (rates as GCRA buckets, the loop guard's trace counts).
// Any number of `ferry serve` processes with the same store.redis and
// tenants are one service.
//
// # Keys
//
// Every key starts with the prefix (default "ferry"). A tenant's keys share
// one hash tag, {<prefix>:t:<tenant>}, so every script touches one slot
// (the same scripts run on Redis Cluster); the few global keys share the
// tag {<prefix>}. Tenant and function names are config names
// ([A-Za-z0-9._-]), which never contain a brace or a colon.
//
//	{P}:version              format version of this prefix ("1"); another is refused
//	{P}:ready                zset tenant → earliest ready time (ms) of its queued tasks: a hint
//	{P}:seq                  hash tenant → sequence number of the tenant state the hint reflects
//	{P}:cursor               the tenant served last (round-robin across tenants)
//	{P}:wake                 pub/sub channel: a task may have become leasable
//	{P}:triggers:paused      hash trigger name → "1": the paused triggers (every node applies it)
//	{P:t:T}:meta             hash: unf (unfinished tasks, for max_queued), seq, lcur (function served last)
//	{P:t:T}:k:<id>           hash: the task (r record, p payload, and the fields scripts change:
//	                         s status, f function, l lease token, e lease expiry ms, y ready ms,
//	                         c recoveries, u updated ms, v record version for compare-and-set)
//	{P:t:T}:q:<fn>           zset id → ready time (ms): the lane's queued tasks, delayed ones included
//	{P:t:T}:heads            zset function → ready time (ms) of its queue's head; the minimum is
//	                         the tenant's earliest, so a script knows in O(log n) whether a
//	                         change made the tenant ready sooner (only then is the hint written)
//	{P:t:T}:lanes            set: every function that ever had a task (Stats)
//	{P:t:T}:run              zset id → lease expiry (ms): the tenant's running tasks
//	{P:t:T}:run:<fn>         zset id → lease expiry (ms): the lane's running tasks
//	{P:t:T}:all              zset (score 0) "<created ms, 15 digits>:<id>": listing, newest first
//	{P:t:T}:fin              zset id → expiry (ms): finished tasks past their deliveries
//	{P:t:T}:dlv              zset id → claim expiry (ms): finished tasks with pending deliveries
//	{P:t:T}:i:<key>          idempotency key → "<task id>|<window end ms>" (the TTL only collects it)
//	{P:t:T}:rate             hash: "" → the tenant's GCRA theoretical arrival time (ms),
//	                         <fn> → the lane's (dispatch: leases and triggers)
//	{P:t:T}:arate            the same for admission (429 at submit)
//	{P:t:T}:tr:<trace>:<fn>  the loop guard's count of first attempts of fn in a trace
//
// # Time
//
// Scripts take the time from Redis (TIME), never from a node's clock, so a
// node whose clock is off neither steals a lease early nor runs a delayed
// task early. Delays and lease lengths travel as durations.
//
// # Concurrency and fairness
//
// max_concurrency per tenant and per function is counted with the leases:
// the run sets hold one member per running task scored by its lease
// expiry, so a killed node's slots come back when its leases expire and
// no counter can leak. Lease picks tenants round-robin from {P}:ready
// after {P}:cursor (a node reuses one pick for a few milliseconds, or until
// a wake-up, visiting its tenants in turn), then a lane of the tenant
// round-robin after meta.lcur, within the limits and rates, in one script
// per tenant. A task costs three scripts in the steady state: enqueue,
// lease and complete; the hint is written only when a tenant becomes
// ready sooner (at once) or runs dry (in the background).
package redisstore
