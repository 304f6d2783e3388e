package inspect

// Replay: the clinical engine run again over a past range, in process, on
// event time. The engine fires its timers (signal lost, escalation) by
// the timestamps of the records it reads, so fed the recorded readings
// and acknowledgements in partition order it raises what it would have
// raised, with its own clock. It produces nothing and commits nothing;
// its alert events are returned to compare.

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/processors"
	"github.com/monitorme/monitorme/schemas"
)

// ReplayOptions say what to replay.
type ReplayOptions struct {
	From, To time.Time
	// Warmup is read before From so that persistence delays, NEWS2 and
	// cadences start from the state they had; its alerts are not kept.
	Warmup time.Duration
	// Patients, when set, are the only patients replayed (their
	// partitions only are read); Ward the only ward (by the rules).
	Patients []string
	Ward     string
	// Progress, if set, is told the records read so far and the total.
	Progress func(done, total int64)
}

// Scope returns whether patient is replayed under rules.
func (o ReplayOptions) Scope(rules *clinical.Config, patient string) bool {
	if len(o.Patients) > 0 && !slices.Contains(o.Patients, patient) {
		return false
	}
	return o.Ward == "" || rules.Ward(patient) == o.Ward
}

// Replay runs the clinical engine with rules over the vitals, acks and
// placements of [From-Warmup, To), and returns the alert events it emits in [From, To).
func Replay(ctx context.Context, kc kafka.Config, rules clinical.Config, o ReplayOptions) ([]schemas.Alert, error) {
	if !o.To.After(o.From) {
		return nil, errors.New("replay: --to must be after --from")
	}
	start := o.From.Add(-o.Warmup)
	r := Range{From: Bound{Kind: AtTime, Time: start}, To: &Bound{Kind: AtTime, Time: o.To}}
	// Read the inputs, then merge each partition's records by time, as
	// the processor's fetches interleave them. The placements are read
	// from the start (the topic is compacted: a patient's latest placement
	// before the range says which ward's rules applied in it).
	var recs []*kgo.Record
	var total int64
	for _, topic := range []string{kc.Topics.Vitals, kc.Topics.Acks, kc.Topics.Placements} {
		opts := Options{Topic: topic, Range: r}
		if topic == kc.Topics.Placements {
			opts.Range.From = Bound{Kind: Start}
		}
		err := readRaw(ctx, kc, opts, o, &rules, func(rec *kgo.Record) {
			recs = append(recs, rec)
			total++
			if o.Progress != nil && total%5000 == 0 {
				o.Progress(total, 0)
			}
		})
		var expired *ExpiredError
		if err != nil && !errors.As(err, &expired) {
			return nil, err
		}
	}
	slices.SortStableFunc(recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return a.Timestamp.Compare(b.Timestamp)
	})
	// The engine itself, without Kafka: the processor's stream of
	// inputs (clinical.Stream) over states in memory, fed the records as
	// the processor decodes them.
	stream := clinical.NewStream(clinical.NewEngine(rules), clinical.NewPatients())
	var out []schemas.Alert
	keep := func(alerts []schemas.Alert) {
		for _, a := range alerts {
			if !a.TS.Before(o.From) && a.TS.Before(o.To) {
				out = append(out, a)
			}
		}
	}
	for i, rec := range recs {
		if i%1000 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if o.Progress != nil && i > 0 {
				o.Progress(int64(i), int64(len(recs)))
			}
		}
		in, err := processors.DecodeInput(kc.Topics, rec)
		if err != nil {
			// A record the processor would dead-letter: it changes
			// nothing but the clock.
			stream.Advance(rec.Partition, rec.Timestamp)
			continue
		}
		keep(stream.Apply(&in))
	}
	if o.Progress != nil {
		o.Progress(int64(len(recs)), int64(len(recs)))
	}
	// The timers due by the end of the range fire as the clock reaches it.
	keep(stream.Tick(func(int32) time.Time { return o.To }))
	return out, nil
}

// RecordedSlack is how long after an alert event's time its record may
// have been written (a processor catching up on a backlog).
const RecordedSlack = 2 * time.Hour

// Recorded returns the alert events alerts.v1 holds for [From, To) of the
// patients in scope, read_committed: what the processors did emit.
func Recorded(ctx context.Context, kc kafka.Config, rules clinical.Config, o ReplayOptions) ([]schemas.Alert, error) {
	// An alert event's record is written when the processor handles the
	// reading, at the event's time or after it (a processor catching up
	// on a backlog writes it later): read records from From up to
	// RecordedSlack past To, and keep the events of [From, To).
	r := Range{From: Bound{Kind: AtTime, Time: o.From.Add(-time.Minute)}, To: &Bound{Kind: AtTime, Time: o.To.Add(RecordedSlack)}}
	var out []schemas.Alert
	err := readRaw(ctx, kc, Options{Topic: kc.Topics.Alerts, Range: r}, o, &rules, func(rec *kgo.Record) {
		if a, err := schemas.DecodeAlert(rec); err == nil && !a.TS.Before(o.From) && a.TS.Before(o.To) {
			out = append(out, a)
		}
	})
	var expired *ExpiredError
	if err != nil && !errors.As(err, &expired) {
		return nil, err
	}
	return out, err
}

// readRaw reads the records of opts.Topic in scope, undecoded.
func readRaw(ctx context.Context, kc kafka.Config, opts Options, o ReplayOptions, rules *clinical.Config, each func(*kgo.Record)) error {
	return readRecords(ctx, kc, opts, o.Patients, func(r *kgo.Record) error {
		if r.Attrs.IsControl() || !o.Scope(rules, string(r.Key)) && string(r.Key) != schemas.RulesKey {
			return nil
		}
		each(r)
		return nil
	})
}
