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
