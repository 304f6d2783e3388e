package schemas

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ADTV1 is the schema of a patient's placement event: admit, transfer or
// discharge.
const ADTV1 = "patient-placement.v1"

// The placement events, after HL7 v2's ADT A01 (admit), A02 (transfer)
// and A03 (discharge).
const (
	Admit     = "admit"
	Transfer  = "transfer"
	Discharge = "discharge"
)

// Placement is where a patient is (patient-placement.v1): admitted to a
// ward's bed, transferred to another, or discharged. It travels on the
// compacted placements topic keyed by patient_id, co-partitioned with the
// vitals topic, so the topic always holds each patient's latest
// placement, the station groups its tiles by ward and bed from it, and
// the processor that owns the patient applies the new ward's rules from
// the transfer on. A hospital's ADT interface, or an admin, posts it.
type Placement struct {
	PatientID string `json:"patient_id"`
	Event     string `json:"event"`
	// Ward and Bed are where the patient now is; empty on a discharge.
	Ward string `json:"ward,omitempty"`
	Bed  string `json:"bed,omitempty"`
	// Name is how the station labels the patient (a display name or
	// initials, as the hospital decides); the platform logs it never.
	Name string `json:"name,omitempty"`
	// By is who posted the event: the caller's token subject.
	By   string    `json:"by"`
	Auth string    `json:"auth,omitempty"`
	TS   time.Time `json:"ts"`
}

// MaxNameLen bounds a placement's display name.
const MaxNameLen = 64

// Validate names every field that is wrong.
func (p *Placement) Validate() error {
	var errs []error
	if msg := CheckID(p.PatientID); msg != "" {
		errs = append(errs, errors.New("patient_id: "+msg))
	}
	switch p.Event {
	case Admit, Transfer:
		if msg := CheckID(p.Ward); msg != "" {
			errs = append(errs, errors.New("ward: "+msg))
		}
		if msg := CheckID(p.Bed); msg != "" {
			errs = append(errs, errors.New("bed: "+msg))
		}
	case Discharge:
		if p.Ward != "" || p.Bed != "" {
			errs = append(errs, errors.New("ward, bed: a discharge has none"))
		}
	default:
		errs = append(errs, fmt.Errorf("event: %q is not admit, transfer or discharge", p.Event))
	}
	if len(p.Name) > MaxNameLen {
		errs = append(errs, fmt.Errorf("name: longer than %d bytes", MaxNameLen))
	}
	if msg := CheckActor(p.By); msg != "" {
		errs = append(errs, errors.New("by: "+msg))
	}
	errs = append(errs, checkAuth(p.Auth))
	if p.TS.IsZero() {
		errs = append(errs, errors.New("ts: missing"))
	}
	return errors.Join(errs...)
}

// PlacementRecord returns the record of a placement: keyed by patient,
// with the schema header, on the placements topic.
func PlacementRecord(topic string, p *Placement) (*kgo.Record, error) {
	return record(topic, p.PatientID, ADTV1, p)
}

// DecodePlacement decodes and validates a patient-placement.v1 record.
func DecodePlacement(r *kgo.Record) (Placement, error) {
	return decodeValid[Placement](r, ADTV1, "placement", func(p *Placement) string { return p.PatientID })
}
