package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Priority is an alarm priority as IEC 60601-1-8 defines them.
type Priority string

// Alarm priorities.
const (
	High   Priority = "high"
	Medium Priority = "medium"
	Low    Priority = "low"
)

// Rank orders priorities: high 3, medium 2, low 1, anything else 0.
func (p Priority) Rank() int {
	switch p {
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// State is where an alert is in its life.
type State string

// Alert states. The threshold rules only raise; the clinical engine
// takes one alert (one alert_id) through raised, escalated, acknowledged
// and resolved.
const (
	Raised       State = "raised"
	Escalated    State = "escalated"
	Acknowledged State = "acknowledged"
	Resolved     State = "resolved"
	// ResolvedUnacknowledged is a latched alarm: its condition cleared
	// before anyone acknowledged it, so it stays on the station until
	// someone does (then it is resolved).
	ResolvedUnacknowledged State = "resolved-unacknowledged"
)

// Open says whether an alert in state s still needs the station: every
// state but resolved.
func (s State) Open() bool { return s != Resolved }

// Alert is an alert event (alert-event.v1). Everything in it is a function
// of the input readings, never of the processor's clock or identity, so
// replaying the same input yields byte-identical alerts: that is what makes
// a duplicate recognizable and a replay checkable.
type Alert struct {
	AlertID   string    `json:"alert_id"`
	PatientID string    `json:"patient_id"`
	Condition string    `json:"condition"`
	Priority  Priority  `json:"priority"`
	State     State     `json:"state"`
	TS        time.Time `json:"ts"`
	// Limit is the threshold the reading crossed, in the reading's unit.
	Limit   float64 `json:"limit"`
	Message string  `json:"message"`
	Reading Reading `json:"reading"`
	// Score and Components are set on "news2" alerts: the aggregate
	// NEWS2 and the points of each parameter.
	Score      *int           `json:"score,omitempty"`
	Components map[string]int `json:"components,omitempty"`
	// AckedBy is set from the acknowledgement on "acknowledged" events
	// (and on the resolved event of an acknowledged alert).
	AckedBy string `json:"acked_by,omitempty"`
	// Ward and Bed are where the patient was placed when the event was
	// made (the latest admission or transfer the processor applied); a
	// patient never placed has the ward the rules file names, if any,
	// and no bed. A transfer moves each open alert to the new ward with
	// an "updated" event, so that a ward's screen, its notification
	// route and its alarm burden follow the patient.
	Ward string `json:"ward,omitempty"`
	Bed  string `json:"bed,omitempty"`
	// Updated marks an event that only brings an open alert's content up
	// to date (a NEWS2 score changing within its band): not a new alarm,
	// not a new state.
	Updated bool `json:"updated,omitempty"`
	// EscalationLevel counts the escalations of the alert so far (on
	// "escalated" events and after); Notify is who the last one called.
	EscalationLevel int    `json:"escalation_level,omitempty"`
	Notify          string `json:"notify,omitempty"`
	// Silenced is set on a medium or low priority alert raised or
	// escalated while the patient's alarms are silenced: the station
	// shows it without sound. A high priority alarm is never silenced.
	Silenced bool `json:"silenced,omitempty"`
}

// AlertID derives an alert's id from its condition and the identity of the
// reading that triggered it, so the same reading processed twice (a replay,
// a retried batch) yields the same id.
func AlertID(condition string, r *Reading) string {
	h := sha256.New()
	for _, s := range []string{r.PatientID, r.DeviceID, string(r.Kind), strconv.FormatUint(r.Seq, 10), r.TS.UTC().Format(time.RFC3339Nano), condition} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
