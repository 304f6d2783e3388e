package clinical

// Patients: the patients' states in memory, for a replay or a test. The
// processor keeps them in package statestore instead, per transaction.

// Patients is a States with no transactions: every change is kept.
type Patients struct {
	states    map[string]*PatientState
	partition map[string]int32
}

// NewPatients returns an empty Patients.
func NewPatients() *Patients {
	return &Patients{states: map[string]*PatientState{}, partition: map[string]int32{}}
}

// Get implements States.
func (ps *Patients) Get(patient string, partition int32, create bool) *PatientState {
	st := ps.states[patient]
	if st == nil && create {
		st = &PatientState{Conditions: map[string]ConditionState{}}
		ps.states[patient], ps.partition[patient] = st, partition
	}
	return st
}

// Peek implements States.
func (ps *Patients) Peek(patient string) *PatientState { return ps.states[patient] }

// Each implements States.
func (ps *Patients) Each(fn func(patient string, partition int32, st *PatientState)) {
	for id, st := range ps.states {
		fn(id, ps.partition[id], st)
	}
}

// Put sets a patient's state (a copy of st), as a restore from the
// changelog does.
func (ps *Patients) Put(patient string, partition int32, st *PatientState) {
	ps.states[patient], ps.partition[patient] = st.Clone(), partition
}

// Len is how many patients have a state.
func (ps *Patients) Len() int { return len(ps.states) }
