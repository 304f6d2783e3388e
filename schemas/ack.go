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
	// By identifies who acknowledged: the subject of the caller's token
	// (a user or station id), never a patient value.
	By string `json:"by"`
	// Auth is how the API authenticated By: oidc, token, or none.
	Auth string    `json:"auth,omitempty"`
	TS   time.Time `json:"ts"`
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
	if msg := CheckActor(a.By); msg != "" {
		errs = append(errs, errors.New("by: "+msg))
	}
	errs = append(errs, checkAuth(a.Auth))
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
	// Auth is how the API authenticated By: oidc, token, or none.
	Auth string `json:"auth,omitempty"`
	// Seconds is how long the silence lasts from TS; 0 ends a silence.
	Seconds int       `json:"seconds"`
	TS      time.Time `json:"ts"`
}

// MaxActorLen bounds who acted (by): an e-mail-like user name fits.
const MaxActorLen = 128

// CheckActor says what is wrong with who acted (by), "" for nothing: a
// token's subject, which may be a user name with @ or +, so it allows
// more than CheckID.
func CheckActor(by string) string {
	switch {
	case by == "":
		return "is required"
	case len(by) > MaxActorLen:
		return "is longer than 128 bytes"
	}
	for _, c := range by {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:@+", c)) {
			return "may contain only letters, digits and . _ : @ + -"
		}
	}
	return ""
}

func checkAuth(auth string) error {
	switch auth {
	case "", "oidc", "token", "none":
		return nil
	}
	return fmt.Errorf("auth: %q, want oidc, token or none", auth)
}

// MaxSilenceSeconds bounds a silence: alarms are never silenced for long.
const MaxSilenceSeconds = 600

// Validate names the first field that is wrong.
func (s *Silence) Validate() error {
	var errs []error
	if msg := CheckID(s.PatientID); msg != "" {
		errs = append(errs, errors.New("patient_id: "+msg))
	}
	if msg := CheckActor(s.By); msg != "" {
		errs = append(errs, errors.New("by: "+msg))
	}
	errs = append(errs, checkAuth(s.Auth))
	if s.Seconds < 0 || s.Seconds > MaxSilenceSeconds {
		errs = append(errs, fmt.Errorf("seconds: %d, want 0 to %d", s.Seconds, MaxSilenceSeconds))
	}
	if s.TS.IsZero() {
		errs = append(errs, errors.New("ts: missing"))
	}
	return errors.Join(errs...)
}

// RulesLoaded is a rules-loaded.v1 event: an alert processor started with
// a set of clinical rules. It is the audit trail of rule changes, which
// reach MonitorMe only as a rules file a processor loads at start: the
// hash says whether the rules changed, By which service identity loaded
// them. It travels on the acks topic with the other actions, keyed
// "rules".
type RulesLoaded struct {
	By     string    `json:"by"`
	Auth   string    `json:"auth"`
	Source string    `json:"source"`
	SHA256 string    `json:"sha256"`
	Rules  string    `json:"rules,omitempty"`
	Host   string    `json:"host"`
	TS     time.Time `json:"ts"`
}

// RulesKey is the record key of rules-loaded events.
const RulesKey = "rules"

// Validate names what is wrong.
func (r *RulesLoaded) Validate() error {
	var errs []error
	if msg := CheckActor(r.By); msg != "" {
		errs = append(errs, errors.New("by: "+msg))
	}
	switch r.Auth {
	case "sasl", "mtls", "none":
	default:
		errs = append(errs, fmt.Errorf("auth: %q, want sasl, mtls or none", r.Auth))
	}
	if len(r.SHA256) != 64 || strings.Trim(r.SHA256, "0123456789abcdef") != "" {
		errs = append(errs, errors.New("sha256: want 64 lowercase hex digits"))
	}
	if r.TS.IsZero() {
		errs = append(errs, errors.New("ts: missing"))
	}
	return errors.Join(errs...)
}
