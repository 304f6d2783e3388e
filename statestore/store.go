// Package statestore keeps the clinical engine's per-patient state for
// the processor: per transaction (Begin, Flush, Commit, Abort), so an
// aborted transaction leaves the committed state as the changelog has it,
// and per partition (Restore, Forget), read back from the compacted state
// changelog when the group gives this processor a partition. Apart from
// the engine's rules (package clinical), as Redpanda Connect keeps a
// partition's state apart from its poll loop.
package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/clinical"
)

// Store holds the committed state of the patients on this processor's
// vitals partitions and the copies the open transaction changed. A
// transaction works on copies (get), so an abort drops them and the
// committed state is what the changelog has; a commit makes them the
// committed state.
type Store struct {
	// topic is the state changelog.
	topic string
	// restoreOpts reach the brokers for restoring state.
	restoreOpts []kgo.Opt

	mu        sync.Mutex
	committed map[string]*clinical.PatientState // by patient
	partition map[string]int32                  // patient -> vitals partition
	dirty     map[string]*clinical.PatientState // changed in the open transaction
}

func New(topic string, restoreOpts []kgo.Opt) *Store {
	return &Store{topic: topic, restoreOpts: restoreOpts,
		committed: map[string]*clinical.PatientState{}, partition: map[string]int32{}, dirty: map[string]*clinical.PatientState{}}
}

// Patients is how many patients' state the store holds.
func (s *Store) Patients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.committed)
}

// Get returns the patient's state for the open transaction, creating it
// if create is set; nil if the patient is unknown and create is not set.
func (s *Store) Get(patient string, partition int32, create bool) *clinical.PatientState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.dirty[patient]; st != nil {
		return st
	}
	cur := s.committed[patient]
	if cur == nil && !create {
		return nil
	}
	if cur == nil {
		cur = &clinical.PatientState{}
	}
	st := cur.Clone()
	s.dirty[patient] = st
	s.partition[patient] = partition
	return st
}

// Peek returns the patient's state as the open transaction sees it,
// without making a copy: read only.
func (s *Store) Peek(patient string) *clinical.PatientState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.dirty[patient]; st != nil {
		return st
	}
	return s.committed[patient]
}

// Begin starts a transaction.
func (s *Store) Begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.dirty)
}

// Flush returns the changelog records of the patients changed in this
// transaction.
func (s *Store) Flush() ([]*kgo.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*kgo.Record, 0, len(s.dirty))
	states := make([]*clinical.PatientState, 0, len(s.dirty))
	for id, st := range s.dirty {
		out = append(out, &kgo.Record{Topic: s.topic, Key: []byte(id)})
		states = append(states, st)
	}
	// A state emptied in this transaction (the patient expired) is
	// written as a tombstone: compaction then drops the patient from the
	// changelog, and a restore never sees it.
	// Encoding every changed patient's snapshot was a fifth of a
	// transaction's time (measured): spread it over the cores.
	workers := min(runtime.GOMAXPROCS(0), len(out)/64+1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(out); i += workers {
				if states[i].Empty() {
					continue // Value nil: a tombstone
				}
				if out[i].Value, errs[w] = clinical.AppendState(nil, states[i]); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("encode state of a patient: %w", err)
	}
	return out, nil
}

// Commit makes the transaction's state the committed state.
func (s *Store) Commit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.dirty {
		if st.Empty() {
			delete(s.committed, id)
			delete(s.partition, id)
			continue
		}
		s.committed[id] = st
	}
	clear(s.dirty)
}

// Abort drops the transaction's state: its records come again.
func (s *Store) Abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.dirty)
}

// Forget drops the state of patients on partitions this processor lost.
func (s *Store) Forget(partitions []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.partition {
		for _, lost := range partitions {
			if p == lost {
				delete(s.committed, id)
				delete(s.partition, id)
			}
		}
	}
}

// Restore reads the changelog partitions with read_committed up to their
// last stable offset and loads every patient's latest snapshot.
func (s *Store) Restore(ctx context.Context, partitions []int32) error {
	if len(partitions) == 0 {
		return nil
	}
	adm, err := kgo.NewClient(s.restoreOpts...)
	if err != nil {
		return err
	}
	defer adm.Close()
	ends, err := settledEnds(ctx, kadm.NewClient(adm), s.topic, partitions)
	if err != nil {
		return err
	}
	assign := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for _, p := range partitions {
		if o, ok := ends.Lookup(s.topic, p); ok && o.Err == nil && o.Offset > 0 {
			assign[p] = kgo.NewOffset().AtStart()
			want[p] = o.Offset
		}
	}
	// Only a patient's last snapshot counts: keep the bytes of each and
	// decode those alone at the end, so an uncompacted changelog costs
	// reading it, not decoding every snapshot in it.
	type last struct {
		value     []byte
		partition int32
	}
	latest := map[string]last{}
	if len(assign) > 0 {
		cl, err := kgo.NewClient(append(s.restoreOpts,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: assign}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			// Control records count towards the end: a partition whose
			// last record is a commit marker is otherwise never "done".
			kgo.KeepControlRecords(),
			kgo.FetchMaxWait(100*time.Millisecond))...)
		if err != nil {
			return err
		}
		defer cl.Close()
		at := map[int32]int64{}
		for !restored(at, want) {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("restore state: %w", err)
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) { ferr = err })
			if ferr != nil {
				return fmt.Errorf("restore state: %w", ferr)
			}
			fs.EachRecord(func(r *kgo.Record) {
				at[r.Partition] = r.Offset + 1
				if r.Attrs.IsControl() {
					return
				}
				if r.Value == nil {
					delete(latest, string(r.Key))
					return
				}
				latest[string(r.Key)] = last{r.Value, r.Partition}
			})
		}
	}
	loaded := make(map[string]*clinical.PatientState, len(latest))
	for id, l := range latest {
		// A snapshot this build cannot read starts the patient afresh,
		// as before: failing the restore would stop the partition for
		// good on one bad record.
		var st clinical.PatientState
		if json.Unmarshal(l.value, &st) == nil {
			loaded[id] = st.Clone()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range loaded {
		s.committed[id] = st
		s.partition[id] = latest[id].partition
	}
	return nil
}

// doubtLimit bounds how long a restore waits for a transaction in doubt
// on the changelog: longer than any processor's transaction timeout, after
// which the broker aborts it itself. Past it the restore fails, and the
// processor starts a new session and tries again.
const doubtLimit = time.Minute

// settledEnds lists the last stable offsets of the changelog partitions
// once no transaction is in doubt on any of them: the last stable offset
// equals the high watermark. The last owner of a partition may have ended
// its transaction (EndTxn answered, so the group's offsets, fetched
// require-stable, include it) before the brokers wrote its markers here;
// reading to the stable offset of that moment restored the state of
// before the transaction under the offsets of after it, and the new owner
// then lost or repeated that transaction's alarms. A transaction of a
// member that died stays open until the broker aborts it after its
// timeout: the restore waits for that too, as the group's offset fetch
// does.
func settledEnds(ctx context.Context, adm *kadm.Client, topic string, partitions []int32) (kadm.ListedOffsets, error) {
	deadline := time.Now().Add(doubtLimit)
	for {
		stable, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("list changelog offsets: %w", err)
		}
		hwm, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("list changelog offsets: %w", err)
		}
		var doubt []int32
		for _, p := range partitions {
			lso, ok1 := stable.Lookup(topic, p)
			end, ok2 := hwm.Lookup(topic, p)
			if !ok1 || !ok2 || lso.Err != nil || end.Err != nil {
				continue // the restore's reads report it
			}
			if lso.Offset < end.Offset {
				doubt = append(doubt, p)
			}
		}
		if len(doubt) == 0 {
			return stable, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("restore state: changelog %s partitions %v have had a transaction in doubt for %v", topic, doubt, doubtLimit)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("restore state: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func restored(at, want map[int32]int64) bool {
	for p, end := range want {
		if at[p] < end {
			return false
		}
	}
	return true
}

// Each calls fn with every patient's state as the open transaction sees
// it: its copy where it changed one, else the committed state.
func (s *Store) Each(fn func(patient string, partition int32, st *clinical.PatientState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.dirty {
		fn(id, s.partition[id], st)
	}
	for id, st := range s.committed {
		if s.dirty[id] == nil {
			fn(id, s.partition[id], st)
		}
	}
}
