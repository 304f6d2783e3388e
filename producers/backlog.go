package producers

// Load shedding. A 202 promises the reading is on the brokers, not that
// anything has read it: past what the alert processors can keep up with,
// accepting more only grows their backlog, delays every alarm behind it,
// and (on the embedded broker of `monitorme dev`) grows memory. Ingest
// refuses instead, with 503 and Retry-After, while the processors' group
// is more than MaxBacklog readings behind the vitals topic, or while the
// process's live heap is near its memory limit (debug.SetMemoryLimit,
// GOMEMLIMIT, `monitorme dev --memory-limit`). Gateways keep the readings
// and post them again; nothing accepted is lost.

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/monitorme/monitorme/internal/kafka"
)

// Backlog watches how far a consumer group (the alert processors) is
// behind a topic (the vitals), and this process's live heap against its
// memory limit.
type Backlog struct {
	adm          *kadm.Client
	group, topic string
	every        time.Duration
	// lag is the group's backlog, -1 while unknown: before the group
	// committed anything (no processor runs, or none has started), or
	// when the brokers did not answer. Unknown never sheds.
	lag atomic.Int64
	// heapFull is set while the live heap is over nine tenths of the
	// memory limit.
	heapFull atomic.Bool
}

// NewBacklog returns a watcher of group's backlog on topic through adm;
// Run keeps it current.
func NewBacklog(adm *kadm.Client, group, topic string) *Backlog {
	b := &Backlog{adm: adm, group: group, topic: topic, every: 200 * time.Millisecond}
	b.lag.Store(-1)
	return b
}

// Run measures every 200 ms until ctx ends.
func (b *Backlog) Run(ctx context.Context) error {
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		b.measure(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (b *Backlog) measure(ctx context.Context) {
	b.heapFull.Store(heapNearLimit())
	ctx, cancel := context.WithTimeout(ctx, b.every)
	defer cancel()
	lag, committed, err := kafka.GroupBacklog(ctx, b.adm, b.group, b.topic)
	if err != nil || !committed {
		lag = -1
	}
	b.lag.Store(lag)
}

// Lag is the group's backlog in records, and whether it is known.
func (b *Backlog) Lag() (int64, bool) {
	n := b.lag.Load()
	return n, n >= 0
}

// HeapFull says whether the live heap is near the memory limit.
func (b *Backlog) HeapFull() bool { return b.heapFull.Load() }

// heapNearLimit says whether the heap live after the last GC is over
// nine tenths of the process's memory limit (none: never).
func heapNearLimit() bool {
	limit := debug.SetMemoryLimit(-1)
	if limit <= 0 || limit == 1<<63-1 {
		return false
	}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return false
	}
	return s[0].Value.Uint64() > uint64(limit)/10*9
}
