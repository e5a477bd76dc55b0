package embedded

import (
	"container/heap"
	"slices"
	"sort"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// entry is the in-memory scheduling state of one unfinished task: 64 bytes,
// id included, plus its slot in entries and in its lane's heap, so a
// million queued tasks cost about 120 MB. The record itself (payload included) stays in Pebble.
type entry struct {
	uid   uuidKey // the id, when it is a canonical UUID (see ids.go)
	sid   *string // the id otherwise
	lane  *lane
	ready int64  // ReadyAt, Unix ns
	token uint64 // mirrors Task.Lease
	run   *leaseState
	// seq is the enqueue order, which breaks ready ties. It wraps after
	// 2^32 enqueues: tasks ready at the same nanosecond around the wrap
	// may then run out of order, nothing worse.
	seq  uint32
	qidx int32 // position in lane.queued, -1 when not queued
}

// id returns the task's id.
func (e *entry) id() string {
	if e.sid != nil {
		return *e.sid
	}
	return e.uid.String()
}

// leaseState is what a running task adds to its entry.
type leaseState struct {
	exp int64 // lease expiry, Unix ns
	// rec is the record as the current lease wrote it, so the lease's end
	// need not read it back; taken by the first use.
	rec  *async.Task
	lidx int // position in index.leases
}

func (e *entry) running() bool { return e.run != nil }

func (e *entry) readyAt() time.Time { return time.Unix(0, e.ready) }

// readyHeap orders a lane's queued tasks by (ReadyAt, enqueue sequence).
type readyHeap []*entry

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if h[i].ready != h[j].ready {
		return h[i].ready < h[j].ready
	}
	return h[i].seq < h[j].seq
}
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].qidx, h[j].qidx = int32(i), int32(j)
}
func (h *readyHeap) Push(x any) {
	e := x.(*entry)
	e.qidx = int32(len(*h))
	*h = append(*h, e)
}
func (h *readyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.qidx = -1
	return e
}

// leaseHeap orders running tasks by lease expiry, for the reaper.
type leaseHeap []*entry

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].run.exp < h[j].run.exp }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].run.lidx, h[j].run.lidx = i, j
}
func (h *leaseHeap) Push(x any) {
	e := x.(*entry)
	e.run.lidx = len(*h)
	*h = append(*h, e)
}
func (h *leaseHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.run.lidx = -1
	return e
}

// lane holds one function's unfinished tasks of one tenant.
type lane struct {
	key     wire.Lane
	tenant  *tenantState
	queued  readyHeap
	running int
	inRing  bool // in tenant.ring, i.e. has queued tasks
}

// tenantState holds one tenant's lanes and counters.
type tenantState struct {
	name       string
	lanes      map[string]*lane // by function: lanes with unfinished tasks
	ring       []*lane          // lanes with queued tasks, visited round-robin
	cursor     int              // next lane of ring to visit
	unfinished int              // queued + running
	reserved   int              // Enqueues past the quota check, not yet committed
	inRing     bool             // in index.ring, i.e. has queued tasks
}

// index is the scheduling index: everything Lease, the reaper and Stats
// need, without touching Pebble. Guarded by Queue.mu.
type index struct {
	entries entryMap // unfinished tasks by id
	tenants map[string]*tenantState
	ring    []*tenantState // tenants with queued tasks, visited round-robin
	cursor  int            // next tenant of ring to visit
	leases  leaseHeap
	seq     uint32
}

func newIndex() *index {
	return &index{entries: newEntryMap(), tenants: map[string]*tenantState{}}
}

// tenant returns the tenant's state, creating it.
func (x *index) tenant(name string) *tenantState {
	ts := x.tenants[name]
	if ts == nil {
		ts = &tenantState{name: name, lanes: map[string]*lane{}}
		x.tenants[name] = ts
	}
	return ts
}

func (x *index) lane(l wire.Lane) *lane {
	ts := x.tenant(l.Tenant)
	ln := ts.lanes[l.Function]
	if ln == nil {
		ln = &lane{key: l, tenant: ts}
		ts.lanes[l.Function] = ln
	}
	return ln
}

// add indexes a new task. A running task (only while loading) is added with
// its lease.
func (x *index) add(id string, l wire.Lane, readyAt time.Time, token uint64) *entry {
	ln := x.lane(l)
	x.seq++
	e := &entry{lane: ln, seq: x.seq, ready: readyAt.UnixNano(), token: token, qidx: -1}
	x.entries.put(id, e)
	ln.tenant.unfinished++
	x.push(e)
	return e
}

// push puts a queued entry in its lane's heap and the lane and tenant in
// their rings.
func (x *index) push(e *entry) {
	ln := e.lane
	heap.Push(&ln.queued, e)
	if !ln.inRing {
		ln.inRing = true
		ln.tenant.ring = append(ln.tenant.ring, ln)
	}
	if ts := ln.tenant; !ts.inRing {
		ts.inRing = true
		x.ring = append(x.ring, ts)
	}
}

// unqueue removes a queued entry from its heap, and its lane and tenant from
// their rings when nothing is left queued there.
func (x *index) unqueue(e *entry) {
	ln := e.lane
	heap.Remove(&ln.queued, int(e.qidx))
	if ln.queued.Len() > 0 {
		return
	}
	ts := ln.tenant
	ts.ring, ts.cursor = removeFromRing(ts.ring, ts.cursor, ln)
	ln.inRing = false
	if len(ts.ring) > 0 {
		return
	}
	x.ring, x.cursor = removeFromRing(x.ring, x.cursor, ts)
	ts.inRing = false
}

// removeFromRing removes v, keeping the cursor on the element it pointed at
// (or the next one when that was v).
func removeFromRing[T comparable](ring []T, cursor int, v T) ([]T, int) {
	i := slices.Index(ring, v)
	if i < 0 {
		return ring, cursor
	}
	ring = slices.Delete(ring, i, i+1)
	if i < cursor {
		cursor--
	}
	if cursor >= len(ring) {
		cursor = 0
	}
	return ring, cursor
}

// pick finds the next task to lease: tenants round-robin from the cursor,
// within a tenant its lanes round-robin, skipping lanes whose head is not
// ready and lanes allow refuses. O(tenants + lanes). When nothing is
// leasable, next is the earliest future ReadyAt among the lanes' heads.
func (x *index) pick(allow func(wire.Lane) bool, now time.Time) (e *entry, next time.Time) {
	for i := range len(x.ring) {
		ts := x.ring[(x.cursor+i)%len(x.ring)]
		for j := range len(ts.ring) {
			ln := ts.ring[(ts.cursor+j)%len(ts.ring)]
			head := ln.queued[0]
			if head.ready > now.UnixNano() {
				if at := head.readyAt(); next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			if allow(ln.key) {
				return head, time.Time{}
			}
		}
	}
	return nil, next
}

// leasable reports whether e can still be leased (re-checked after waiting
// for its lock).
func (x *index) leasable(e *entry, allow func(wire.Lane) bool, now time.Time) bool {
	return x.entries.has(e) && !e.running() && e.qidx >= 0 && e.ready <= now.UnixNano() && allow(e.lane.key)
}

// lease marks e running with the next fencing token and moves the cursors
// past its tenant and lane.
func (x *index) lease(e *entry, exp time.Time) {
	ln, ts := e.lane, e.lane.tenant
	if i := slices.Index(x.ring, ts); i >= 0 {
		x.cursor = (i + 1) % len(x.ring)
	}
	if j := slices.Index(ts.ring, ln); j >= 0 {
		ts.cursor = (j + 1) % len(ts.ring)
	}
	x.unqueue(e)
	e.run = &leaseState{exp: exp.UnixNano()}
	e.token++
	ln.running++
	heap.Push(&x.leases, e)
}

// requeue ends e's lease and queues it again, ready at readyAt.
func (x *index) requeue(e *entry, readyAt time.Time) {
	if e.running() {
		heap.Remove(&x.leases, e.run.lidx)
		e.run = nil
		e.lane.running--
	}
	e.ready = readyAt.UnixNano()
	x.push(e)
}

// remove forgets a task that finished (or vanished).
func (x *index) remove(e *entry) {
	if e.running() {
		heap.Remove(&x.leases, e.run.lidx)
		e.run = nil
		e.lane.running--
	} else if e.qidx >= 0 {
		x.unqueue(e)
	}
	x.entries.remove(e)
	e.lane.tenant.unfinished--
	x.gc(e.lane)
}

// gc drops an empty lane, and its tenant when that is empty too.
func (x *index) gc(ln *lane) {
	ts := ln.tenant
	if ln.queued.Len() == 0 && ln.running == 0 && ts.lanes[ln.key.Function] == ln {
		delete(ts.lanes, ln.key.Function)
	}
	x.gcTenant(ts)
}

func (x *index) gcTenant(ts *tenantState) {
	if ts.unfinished == 0 && ts.reserved == 0 && len(ts.lanes) == 0 && x.tenants[ts.name] == ts {
		delete(x.tenants, ts.name)
	}
}

// leaseRef names one lease: the entry and the token it had when seen.
type leaseRef struct {
	e     *entry
	token uint64
}

// expired lists the leases that expired at now, visiting only those heap
// nodes (O(expired)).
func (x *index) expired(now time.Time) []leaseRef {
	var out []leaseRef
	var walk func(i int)
	walk = func(i int) {
		if i >= len(x.leases) || x.leases[i].run.exp > now.UnixNano() {
			return
		}
		out = append(out, leaseRef{x.leases[i], x.leases[i].token})
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
	return out
}

// nextExpiry returns the earliest lease expiry (zero if nothing runs).
func (x *index) nextExpiry() time.Time {
	if len(x.leases) == 0 {
		return time.Time{}
	}
	return time.Unix(0, x.leases[0].run.exp)
}

// stats counts unfinished tasks per lane, sorted by lane.
func (x *index) stats() []async.LaneStats {
	var out []async.LaneStats
	for _, ts := range x.tenants {
		for _, ln := range ts.lanes {
			if ln.queued.Len() == 0 && ln.running == 0 {
				continue
			}
			out = append(out, async.LaneStats{Lane: ln.key, Queued: ln.queued.Len(), Running: ln.running})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Lane.String() < out[j].Lane.String() })
	return out
}
