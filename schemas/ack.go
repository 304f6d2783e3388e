package schemas

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Ack is an acknowledgement event (alert-ack.v1): a clinician has seen an
// alert. It travels on the acks topic keyed by patient_id, co-partitioned
// with the vitals topic, so the processor that owns the patient's open
// alerts reads it.
type Ack struct {
	AlertID   string `json:"alert_id"`
	PatientID string `json:"patient_id"`
	// By identifies who acknowledged: a user or station id, never a
	// patient value.
	By string    `json:"by"`
	TS time.Time `json:"ts"`
}

// IsAlertID says whether id has the shape AlertID gives: 32 lowercase hex
// digits.
func IsAlertID(id string) bool {
	return len(id) == 32 && strings.Trim(id, "0123456789abcdef") == ""
}

// Validate names the first field that is wrong.
func (a *Ack) Validate() error {
	var errs []error
	if !IsAlertID(a.AlertID) {
		errs = append(errs, fmt.Errorf("alert_id: %q is not 32 lowercase hex digits", a.AlertID))
	}
	if msg := CheckID(a.PatientID); msg != "" {
		errs = append(errs, errors.New("patient_id: "+msg))
	}
	if msg := CheckID(a.By); msg != "" {
		errs = append(errs, errors.New("by: "+msg))
	}
	if a.TS.IsZero() {
		errs = append(errs, errors.New("ts: missing"))
	}
	return errors.Join(errs...)
}

// Silence is an alarm silence (audio pause) event (alarm-silence.v1): a
// clinician at the bedside silences a patient's medium and low priority
// alarms for a bounded time. It travels on the acks topic, keyed by
// patient_id, so the processor that owns the patient reads it in order
// with the patient's acknowledgements.
type Silence struct {
	PatientID string `json:"patient_id"`
	By        string `json:"by"`
	// Seconds is how long the silence lasts from TS; 0 ends a silence.
	Seconds int       `json:"seconds"`
	TS      time.Time `json:"ts"`
}

// MaxSilenceSeconds bounds a silence: alarms are never silenced for long.
const MaxSilenceSeconds = 600

// Validate names the first field that is wrong.
func (s *Silence) Validate() error {
	var errs []error
	if msg := CheckID(s.PatientID); msg != "" {
		errs = append(errs, errors.New("patient_id: "+msg))
	}
	if msg := CheckID(s.By); msg != "" {
		errs = append(errs, errors.New("by: "+msg))
	}
	if s.Seconds < 0 || s.Seconds > MaxSilenceSeconds {
		errs = append(errs, fmt.Errorf("seconds: %d, want 0 to %d", s.Seconds, MaxSilenceSeconds))
	}
	if s.TS.IsZero() {
		errs = append(errs, errors.New("ts: missing"))
	}
	return errors.Join(errs...)
}
