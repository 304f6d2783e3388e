package api

// What the live view answers: the patients, their latest readings and
// silences, and the alerts it holds, for the routes (server.go, alarms.go).

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// PatientSummary is one row of GET /v1/patients.
type PatientSummary struct {
	PatientID     string    `json:"patient_id"`
	LastReadingAt time.Time `json:"last_reading_at,omitzero"`
	Vitals        int       `json:"vitals"`
}

// Patients lists the patients in view, by id.
func (l *Live) Patients() []PatientSummary {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]PatientSummary, 0, len(l.patients))
	for id, pv := range l.patients {
		out = append(out, PatientSummary{PatientID: id, LastReadingAt: pv.updated, Vitals: len(pv.latest)})
	}
	slices.SortFunc(out, func(a, b PatientSummary) int { return cmp.Compare(a.PatientID, b.PatientID) })
	return out
}

// Latest returns the latest reading of each vital of patient, and whether
// the patient is in view.
func (l *Live) Latest(patient string) (map[schemas.Kind]schemas.Reading, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	pv, ok := l.patients[patient]
	if !ok {
		return nil, false
	}
	out := make(map[schemas.Kind]schemas.Reading, len(pv.latest))
	for k, r := range pv.latest {
		out[k] = r
	}
	return out, true
}

// Silence returns the patient's alarm silence in force at now, if any.
func (l *Live) Silence(patient string, now time.Time) (schemas.Silence, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	pv, ok := l.patients[patient]
	if !ok || pv.silence == nil || !now.Before(pv.silence.TS.Add(time.Duration(pv.silence.Seconds)*time.Second)) {
		return schemas.Silence{}, false
	}
	return *pv.silence, true
}

// Alerts returns up to limit alert events, newest first by event time,
// that f selects (an event's ward is where the patient was when it was
// made) with event time at or after since.
func (l *Live) Alerts(f Filter, since time.Time, limit int) []schemas.Alert {
	l.mu.RLock()
	out := []schemas.Alert{}
	for _, a := range l.alerts {
		if (f.Patient == "" || a.PatientID == f.Patient) && (f.Ward == "" || a.Ward == f.Ward) && !a.TS.Before(since) {
			out = append(out, a)
		}
	}
	l.mu.RUnlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].TS.After(out[j].TS) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Alert returns the latest event of the alert with id, and whether the view
// has it.
func (l *Live) Alert(id string) (schemas.Alert, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.alerts)
	// Newest first: the ring's newest entry is just before head.
	for i := 1; i <= n; i++ {
		if a := l.alerts[(l.head-i+n)%n]; a.AlertID == id {
			return a, true
		}
	}
	return schemas.Alert{}, false
}

// AlertEvents calls fn for every alert event in view with event time at or
// after since, oldest first.
func (l *Live) AlertEvents(since time.Time, fn func(*schemas.Alert)) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.alerts)
	for i := range n {
		if a := &l.alerts[(l.head+i)%n]; !a.TS.Before(since) {
			fn(a)
		}
	}
}
