package processors

import (
	"context"
	"maps"
	"time"

	"github.com/monitorme/monitorme/schemas"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// procClock is the processor clock of each vitals partition, which drives
// the timers (signal lost, escalation). While a partition has a backlog
// it is the partition's stream time, the newest record timestamp
// consumed from it: a replay, or a restart after downtime, then fires each
// timer where the live run did, between the same records, instead of
// firing every timer at once because the wall clock has moved on. Once
// the partition is caught up the wall clock drives it too, so a patient
// whose devices all went quiet still gets a signal-lost alarm.
//
// Stream time moves with the transactions: the records of the open one
// count (their readings are applied in it), but only a commit makes them
// the partition's clock. An aborted transaction's records are consumed
// again, perhaps in other batches, and a clock left ahead of the applied
// readings would fire a timer before the reading that stops it (a signal
// lost before the heart rate that was on time).
type procClock struct {
	topic string
	// stream is each partition's stream time as of the last commit;
	// pending, that of the open transaction's records.
	stream   map[int32]time.Time
	pending  map[int32]time.Time
	caughtUp map[int32]bool
	// resumed is when each partition was first found caught up in this
	// run: the moment monitoring resumed after a start or a rebalance.
	resumed map[int32]time.Time
	// pos is the consumed position (offset after the last record
	// observed) of each vitals partition in the open transaction,
	// committedPos as of the last commit: an abort rewinds the consumer
	// to it. The client's own uncommitted offsets are not rewound by an
	// abort until the next poll returns records, and a check in between
	// found a partition whose aborted records were still to come again
	// caught up, so the wall clock, hours ahead in a replay, fired its
	// timers before those records.
	pos, committedPos map[int32]int64
	checked           time.Time
	now               func() time.Time
}

func (c *procClock) init(vitals string) {
	c.topic = vitals
	c.stream = map[int32]time.Time{}
	c.pending = map[int32]time.Time{}
	c.caughtUp = map[int32]bool{}
	c.resumed = map[int32]time.Time{}
	c.pos, c.committedPos = map[int32]int64{}, map[int32]int64{}
	if c.now == nil {
		c.now = time.Now
	}
}

// at is the clock of partition p.
func (c *procClock) at(p int32) time.Time {
	t := c.stream[p]
	if pt := c.pending[p]; pt.After(t) {
		t = pt
	}
	if c.caughtUp[p] {
		if now := c.now(); now.After(t) {
			t = now
		}
	}
	return t
}

// observe advances the open transaction's stream time over records about
// to be processed in it. Records of co-partitioned inputs
// (acknowledgements) count for their partition number too.
func (c *procClock) observe(fs kgo.Fetches) {
	fs.EachRecord(func(r *kgo.Record) {
		if schemas.IsRulesLoaded(r) {
			return // wall-clock time of a processor's start, not stream time
		}
		if r.Timestamp.After(c.pending[r.Partition]) {
			c.pending[r.Partition] = r.Timestamp
		}
		if r.Topic == c.topic {
			// Not caught up until the next end-offset check says so.
			c.caughtUp[r.Partition] = false
			c.pos[r.Partition] = max(c.pos[r.Partition], r.Offset+1)
		}
	})
}

// committed makes the open transaction's stream time the partitions'
// clock.
func (c *procClock) committed() {
	for p, t := range c.pending {
		if t.After(c.stream[p]) {
			c.stream[p] = t
		}
	}
	clear(c.pending)
	c.committedPos = maps.Clone(c.pos)
}

// aborted forgets the open transaction's stream time, its consumed
// positions, and which partitions were caught up: the consumer is rewound
// to the last commit.
func (c *procClock) aborted() {
	clear(c.pending)
	clear(c.caughtUp)
	c.pos = maps.Clone(c.committedPos)
}

// refresh asks the brokers, at most once per interval, for the last stable
// offset of every vitals partition and marks the partitions whose consumed
// position reached it. It fails safe: a partition not known to be caught
// up keeps stream time, which delays timers but never fires one early.
//
// It returns the partitions that resumed at this check (caught up for the
// first time in this run) and when: the caller measures the platform's
// gap in monitoring from the partition's last reading.
func (c *procClock) refresh(cl *kgo.Client, interval time.Duration) (resumed map[int32]time.Time) {
	now := c.now()
	if now.Sub(c.checked) < interval {
		return nil
	}
	c.checked = now
	ctx, cancel := context.WithTimeout(context.Background(), max(interval, time.Second))
	defer cancel()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, c.topic)
	if err != nil {
		return nil
	}
	stable := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			stable[o.Partition] = o.Offset
		}
	})
	committed := map[int32]int64{}
	for p, o := range cl.CommittedOffsets()[c.topic] {
		committed[p] = o.Offset
	}
	return c.mark(stable, committed, now)
}

// mark marks caught up the partitions whose consumed position reached
// their last stable offset: the group's committed offset (where a start or
// a rebalance resumes) or, if later, what the processor consumed itself
// (pos, rewound by an abort). It returns the partitions found caught up
// for the first time, with now.
func (c *procClock) mark(stable, committed map[int32]int64, now time.Time) (resumed map[int32]time.Time) {
	clear(c.caughtUp)
	for p, end := range stable {
		at, ok := committed[p]
		if mine, seen := c.pos[p]; seen {
			at, ok = max(at, mine), true
		}
		if !ok && end == 0 {
			// A partition never written to: nothing to catch up with
			// (a new group has no committed offset to compare).
			at, ok = 0, true
		}
		if !ok || at < end {
			continue
		}
		c.caughtUp[p] = true
		if c.resumed[p].IsZero() {
			c.resumed[p] = now
			if resumed == nil {
				resumed = map[int32]time.Time{}
			}
			resumed[p] = now
		}
	}
	return resumed
}

// resumedAt is when partition p was first caught up in this run, zero
// while it has never been.
func (c *procClock) resumedAt(p int32) time.Time { return c.resumed[p] }
