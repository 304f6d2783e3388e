package processors

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// After an aborted transaction the consumer is rewound to the last commit:
// a partition whose aborted records reached its end is not caught up until
// they are consumed again. (The check read the client's uncommitted
// offsets, which an abort does not rewind until the next poll returns
// records: under load an empty poll came first, the partition was found
// caught up, and the wall clock, two hours ahead in a replay, fired its
// timers before the aborted records were applied again.)
func TestAbortedRecordsAreNotCaughtUp(t *testing.T) {
	var c procClock
	c.init("vitals")
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var fs kgo.Fetches
	fs = append(fs, kgo.Fetch{Topics: []kgo.FetchTopic{{Topic: "vitals", Partitions: []kgo.FetchPartition{{Partition: 3,
		Records: []*kgo.Record{{Topic: "vitals", Partition: 3, Offset: 40, Timestamp: now.Add(-2 * time.Hour)}}}}}}})
	stable := map[int32]int64{3: 41}
	group := map[int32]int64{3: 40}
	c.observe(fs) // the open transaction consumed offset 40, the last
	if c.mark(stable, group, now); !c.caughtUp[3] {
		t.Fatal("a partition consumed to its end is not caught up")
	}
	c.aborted()
	if c.mark(stable, group, now); c.caughtUp[3] {
		t.Fatal("caught up with its aborted record still to come again")
	}
	c.observe(fs)
	c.committed()
	if c.mark(stable, map[int32]int64{3: 41}, now); !c.caughtUp[3] {
		t.Fatal("not caught up once the record was applied and committed")
	}
}
