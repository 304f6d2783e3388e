package clinical

// Stream: the engine run over a partitioned stream of inputs, as the
// processor reads them and a replay reads them back. It keeps each
// partition's stream time and timer queue (queue.go), and fires every
// timer due before it applies the next input, so the same log gives the
// same alert events wherever batches or transactions end.

import (
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// States is where a stream keeps its patients' states: package statestore
// for the processor (per transaction, restored from the changelog),
// [Patients] for a replay or a test.
type States interface {
	// Get returns the patient's state to change, creating it if create
	// is set; nil if the patient is unknown and create is not set.
	Get(patient string, partition int32, create bool) *PatientState
	// Peek returns the patient's state to read only, or nil.
	Peek(patient string) *PatientState
	// Each calls fn with every patient's state.
	Each(fn func(patient string, partition int32, st *PatientState))
}

// Stream applies the inputs of one or more partitions in their log order.
//
// Two clocks drive it. Condition rules and NEWS2 run on event time, the
// readings' own ts. Silence (signal lost) and escalation run on the
// processor clock: the arrival time of records (their timestamps, set by
// the ingest producer and stored in the log) as they are consumed, and the
// wall clock only once a partition is caught up (the caller's Tick). A
// replay therefore fires the same timers with the same content, and a
// live processor still notices a device that went quiet when nothing else
// arrives.
//
// A Stream is not safe for concurrent use: one transaction loop drives it.
type Stream struct {
	eng    *Engine
	states States
	// resumedAt gives when the processor caught up with a vitals
	// partition after it started or was given it (zero before); nil
	// (a replay, a test) is always zero.
	resumedAt func(partition int32) time.Time

	// stream is each partition's stream time in the open transaction,
	// committedStream as of the last commit; queues order each
	// partition's patients by their next timer (queue.go). stale asks
	// for the queues to be rebuilt (after a restore, a lost partition,
	// an abort), possibly from another goroutine.
	stream, committedStream map[int32]time.Time
	queues                  map[int32]*timerQueue
	stale                   atomic.Bool
}

// NewStream returns a stream of eng's rules over the patients in states.
func NewStream(eng *Engine, states States) *Stream {
	return &Stream{eng: eng, states: states,
		stream: map[int32]time.Time{}, committedStream: map[int32]time.Time{}, queues: map[int32]*timerQueue{}}
}

// Engine is the stream's engine.
func (s *Stream) Engine() *Engine { return s.eng }

// Resume tells the stream when the processor caught up with each vitals
// partition: silence timers do not blame a device for the time before.
func (s *Stream) Resume(resumedAt func(partition int32) time.Time) { s.resumedAt = resumedAt }

func (s *Stream) resumed(partition int32) time.Time {
	if s.resumedAt == nil {
		return time.Time{}
	}
	return s.resumedAt(partition)
}

// Advance moves partition p's stream time to arrival, if later, and
// returns it. Every input does; one that cannot be decoded does nothing
// else (the next input or Tick fires what came due).
func (s *Stream) Advance(p int32, arrival time.Time) time.Time { return s.advance(p, arrival) }

// Reading applies a reading that arrived at arrival on partition p, after
// the timers due by then.
func (s *Stream) Reading(p int32, arrival time.Time, rd *schemas.Reading) []schemas.Alert {
	now := s.advance(p, arrival)
	alerts := s.fire(p, now)
	st := s.states.Get(rd.PatientID, p, true)
	alerts = append(alerts, s.eng.Reading(st, rd, arrival)...)
	s.schedule(p, rd.PatientID, st, now)
	return s.stamp(alerts)
}

// Acks applies a record of the acknowledgements topic: an
// acknowledgement or a silence (a rules-loaded audit record changes
// nothing and does not move the clock: its time is a processor's start).
func (s *Stream) Acks(p int32, arrival time.Time, rec *schemas.AcksRecord) []schemas.Alert {
	if rec.Rules != nil {
		return nil
	}
	now := s.advance(p, arrival)
	alerts := s.fire(p, now)
	switch {
	case rec.Silence != nil:
		if st := s.states.Get(rec.Silence.PatientID, p, false); st != nil {
			s.eng.Silence(st, rec.Silence)
		}
	case rec.Ack != nil:
		if st := s.states.Get(rec.Ack.PatientID, p, false); st != nil {
			alerts = append(alerts, s.eng.Ack(st, rec.Ack)...)
			s.schedule(p, rec.Ack.PatientID, st, now)
		}
	}
	return s.stamp(alerts)
}

// Placement applies an admission, transfer or discharge ([Engine.Place]).
func (s *Stream) Placement(p int32, arrival time.Time, pl *schemas.Placement) []schemas.Alert {
	now := s.advance(p, arrival)
	alerts := s.fire(p, now)
	st := s.states.Get(pl.PatientID, p, true)
	alerts = append(alerts, s.eng.Place(st, pl)...)
	return s.stamp(alerts)
}

// Input is one record of the stream's topics, decoded: exactly one of
// Reading, Acks and Placement is set.
type Input struct {
	// Partition is the record's partition, Arrival its timestamp (the
	// processor clock).
	Partition int32
	Arrival   time.Time
	Reading   *schemas.Reading
	Acks      *schemas.AcksRecord
	Placement *schemas.Placement
}

// Apply applies one input: Reading, Acks or Placement.
func (s *Stream) Apply(in *Input) []schemas.Alert {
	switch {
	case in.Reading != nil:
		return s.Reading(in.Partition, in.Arrival, in.Reading)
	case in.Acks != nil:
		return s.Acks(in.Partition, in.Arrival, in.Acks)
	case in.Placement != nil:
		return s.Placement(in.Partition, in.Arrival, in.Placement)
	}
	return nil
}

// Due reports whether a patient's timer is due by clock(partition).
func (s *Stream) Due(clock func(partition int32) time.Time) bool { return s.dueBy(clock) }

// Tick fires every timer due by clock(partition) of the patient's
// partition, for the patients no input has touched lately: a device that
// went quiet, an alert nobody acknowledged.
func (s *Stream) Tick(clock func(partition int32) time.Time) []schemas.Alert {
	s.rebuildIfStale()
	var alerts []schemas.Alert
	for _, p := range slices.Sorted(maps.Keys(s.queues)) {
		alerts = append(alerts, s.fire(p, clock(p))...)
	}
	return s.stamp(alerts)
}

// Commit makes the stream times of the inputs applied since the last
// Commit the committed ones; Abort goes back to them (and the caller's
// States drops the states those inputs changed).
func (s *Stream) Commit() { s.commitClock() }

// Abort: see Commit.
func (s *Stream) Abort() { s.abortClock() }

// Invalidate says the states changed under the stream (a restore, a lost
// partition): the timer queues are rebuilt before the next input. Safe
// from any goroutine.
func (s *Stream) Invalidate() { s.stale.Store(true) }

// LastArrival is the latest arrival of a reading of any patient on
// partition: where monitoring of it had got to.
func (s *Stream) LastArrival(partition int32) time.Time {
	var last time.Time
	s.states.Each(func(_ string, p int32, st *PatientState) {
		if a := lastArrival(st); p == partition && a.After(last) {
			last = a
		}
	})
	return last
}

// stamp says on every alert event where its patient is now.
func (s *Stream) stamp(alerts []schemas.Alert) []schemas.Alert {
	for i := range alerts {
		alerts[i].Ward, alerts[i].Bed = s.eng.Where(alerts[i].PatientID, s.states.Peek(alerts[i].PatientID))
	}
	return alerts
}
