package clinical

// The timer queue: each vitals partition's patients ordered by when their
// next timer (signal lost, escalation, expiry) is due. Before every record
// the partition's stream time (the newest arrival consumed from it, in
// offset order) moves on and every timer due by it fires, whichever
// patient it belongs to. Where a timer fires among the records is then a
// function of the log alone: before, other patients' timers fired at the
// end of each transaction, by the newest arrival of the whole batch, so a
// reading whose arrival time was a little older than a record before it
// (two ingest instances, or two requests of one) could land before or
// after the timer it should stop, depending on where a batch ended. Three
// runs over the same topic gave 98,230, 98,230 and 98,184 alert events.

import (
	"container/heap"
	"maps"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// maxFirings bounds how often one patient's timers fire for one moment of
// the clock: each firing ends a wait, and a patient has a handful.
const maxFirings = 64

type timerEntry struct {
	due     time.Time
	patient string
}

// timerQueue is a min-heap of deadlines with the deadline each patient is
// scheduled at; an entry whose deadline is no longer its patient's is
// stale and skipped when it surfaces. A patient has at most one live
// entry: a deadline that moved later keeps its entry until it surfaces.
type timerQueue struct {
	h  timerHeap
	at map[string]time.Time
}

type timerHeap []timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].patient < h[j].patient
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (s *Stream) queue(p int32) *timerQueue {
	q := s.queues[p]
	if q == nil {
		q = &timerQueue{at: map[string]time.Time{}}
		s.queues[p] = q
	}
	return q
}

// schedule puts the patient's next deadline, as seen at now, in the
// partition's queue, unless an earlier one is there already.
func (s *Stream) schedule(p int32, patient string, st *PatientState, now time.Time) {
	d := s.eng.deadline(st, s.eng.rulesOf(patient, st), s.resumed(p), now)
	if d.IsZero() {
		return
	}
	q := s.queue(p)
	if cur, ok := q.at[patient]; ok && !d.Before(cur) {
		return
	}
	q.at[patient] = d
	heap.Push(&q.h, timerEntry{due: d, patient: patient})
}

// advance moves partition p's stream time to at, if later.
func (s *Stream) advance(p int32, at time.Time) time.Time {
	if at.After(s.stream[p]) {
		s.stream[p] = at
	}
	return s.stream[p]
}

// fire fires the timers of partition p's patients due by now, earliest
// first.
func (s *Stream) fire(p int32, now time.Time) []schemas.Alert {
	s.rebuildIfStale()
	q := s.queues[p]
	if q == nil {
		return nil
	}
	var out []schemas.Alert
	var fired map[string]int
	for len(q.h) > 0 && !q.h[0].due.After(now) {
		e := heap.Pop(&q.h).(timerEntry)
		if cur, ok := q.at[e.patient]; !ok || !cur.Equal(e.due) {
			continue
		}
		if fired == nil {
			fired = map[string]int{}
		}
		if fired[e.patient]++; fired[e.patient] > maxFirings {
			// Every wait ends when it fires (an alarm raised, resolved or
			// updated, or a set found incomplete); one that did not would
			// spin here for ever. It is tried again a moment later.
			q.at[e.patient] = now.Add(time.Millisecond)
			heap.Push(&q.h, timerEntry{due: q.at[e.patient], patient: e.patient})
			continue
		}
		delete(q.at, e.patient)
		cur := s.states.Peek(e.patient)
		if cur == nil {
			continue
		}
		rs := s.eng.rulesOf(e.patient, cur)
		if d := s.eng.deadline(cur, rs, s.resumed(p), now); d.IsZero() || now.Before(d) {
			s.schedule(p, e.patient, cur, now)
			continue
		}
		st := s.states.Get(e.patient, p, false)
		out = append(out, s.eng.timers(st, rs, e.patient, now, s.resumed(p))...)
		s.schedule(p, e.patient, st, now)
	}
	return out
}

// dueBy says whether a timer of any partition is due by clock. Stale
// entries and deadlines that moved later are settled on the way, so a
// true answer means Tick fires something.
func (s *Stream) dueBy(clock func(partition int32) time.Time) bool {
	s.rebuildIfStale()
	for p, q := range s.queues {
		now := clock(p)
		for len(q.h) > 0 && !q.h[0].due.After(now) {
			e := q.h[0]
			if cur, ok := q.at[e.patient]; !ok || !cur.Equal(e.due) {
				heap.Pop(&q.h)
				continue
			}
			st := s.states.Peek(e.patient)
			if st != nil {
				if d := s.eng.deadline(st, s.eng.rulesOf(e.patient, st), s.resumed(p), now); !d.IsZero() && !now.Before(d) {
					return true
				}
			}
			heap.Pop(&q.h)
			delete(q.at, e.patient)
			if st != nil {
				s.schedule(p, e.patient, st, now)
			}
		}
	}
	return false
}

// rebuildIfStale rebuilds the queues from the store after a restore, a
// lost partition or an aborted transaction: the queues follow the
// committed state, and an aborted transaction may have moved a deadline.
func (s *Stream) rebuildIfStale() {
	// A load first: this runs before every record, and a swap writes.
	if !s.stale.Load() || !s.stale.Swap(false) {
		return
	}
	clear(s.queues)
	s.states.Each(func(id string, p int32, st *PatientState) { s.schedule(p, id, st, s.stream[p]) })
}

// commitClock makes the open transaction's stream time the committed one;
// abortClock goes back to it.
func (s *Stream) commitClock() { s.committedStream = maps.Clone(s.stream) }

func (s *Stream) abortClock() {
	s.stream = maps.Clone(s.committedStream)
	if s.stream == nil {
		s.stream = map[int32]time.Time{}
	}
	s.stale.Store(true)
}
