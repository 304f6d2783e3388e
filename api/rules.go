package api

// The clinical rules as GET /v1/patients/{id}/rules and the NEWS2 of
// GET /v1/patients/{id} show them: views of package clinical's types,
// durations as strings ("15s"). The engine knows nothing of them.

import (
	"slices"
	"time"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/schemas"
)

// PatientRulesView is a patient's rule set and the engine-wide policies.
type PatientRulesView struct {
	RuleSetView
	Policies PoliciesView `json:"policies"`
}

// patientRulesView is the rules in force for patient.
func patientRulesView(c *clinical.Config, patient string) PatientRulesView {
	return PatientRulesView{ruleSetView(c.For(patient)), policiesView(c)}
}

// CurrentNEWS2View is a patient's current NEWS2 as the API shows it.
type CurrentNEWS2View struct {
	clinical.NEWS2Score
	// TS is the event time of the newest parameter.
	TS       time.Time `json:"ts"`
	Response string    `json:"response"`
}

// currentNEWS2View scores the patient's latest readings as the engine
// would (clinical.Config.CurrentNEWS2); nil without a complete set.
func currentNEWS2View(c *clinical.Config, patient string, latest map[schemas.Kind]schemas.Reading) *CurrentNEWS2View {
	s, at, ok := c.CurrentNEWS2(patient, latest)
	if !ok {
		return nil
	}
	return &CurrentNEWS2View{NEWS2Score: s, TS: at, Response: s.Response()}
}

// RuleSetView is a rule set as the API shows it.
type RuleSetView struct {
	Ward        string                      `json:"ward,omitempty"`
	NEWS2       bool                        `json:"news2"`
	Hypercapnic bool                        `json:"hypercapnic"`
	Escalation  map[string][]EscalationView `json:"escalation"`
	Latch       string                      `json:"latch"`
	SatSeconds  *SatSecondsView             `json:"satseconds,omitempty"`
	SignalLost  []SignalLostView            `json:"signal_lost"`
	Conditions  []ConditionRuleView         `json:"conditions"`
}

// EscalationView is an escalation tier as the API shows it.
type EscalationView struct {
	After  string `json:"after"`
	Notify string `json:"notify,omitempty"`
}

// SatSecondsView is the SatSeconds rule as the API shows it.
type SatSecondsView struct {
	Condition string  `json:"condition"`
	Limit     float64 `json:"limit"`
	Threshold float64 `json:"threshold"`
	Tau       string  `json:"tau"`
	Priority  string  `json:"priority"`
}

// SignalLostView is a SignalLostRule as the API shows it.
type SignalLostView struct {
	Condition string       `json:"condition"`
	Kind      schemas.Kind `json:"kind"`
	After     string       `json:"after"`
	Priority  string       `json:"priority"`
}

// ConditionRuleView is a ConditionRule as the API shows it.
type ConditionRuleView struct {
	Condition    string       `json:"condition"`
	Kind         schemas.Kind `json:"kind"`
	Below        bool         `json:"below"`
	Abs          bool         `json:"abs,omitempty"`
	Limit        float64      `json:"limit"`
	AsleepLimit  *float64     `json:"asleep_limit,omitempty"`
	Priority     string       `json:"priority"`
	Delay        string       `json:"delay"`
	ResolveAfter string       `json:"resolve_after"`
}

// ruleSetView is the rule set with durations as strings ("15s").
func ruleSetView(rs *clinical.RuleSet) RuleSetView {
	v := RuleSetView{Ward: rs.Ward, NEWS2: rs.NEWS2, Hypercapnic: rs.Hypercapnic, Escalation: map[string][]EscalationView{},
		Latch: string(rs.Latch), SignalLost: []SignalLostView{}, Conditions: []ConditionRuleView{}}
	if v.Latch == "" {
		v.Latch = "none"
	}
	for p, tiers := range rs.Escalation {
		v.Escalation[string(p)] = []EscalationView{}
		for _, t := range tiers {
			v.Escalation[string(p)] = append(v.Escalation[string(p)], EscalationView{After: t.After.String(), Notify: t.Notify})
		}
	}
	if r := rs.SatSeconds; r != nil {
		v.SatSeconds = &SatSecondsView{Condition: "spo2_satseconds", Limit: r.Limit, Threshold: r.Threshold, Tau: r.Tau.String(), Priority: string(r.Priority)}
	}
	for _, s := range rs.SignalLost {
		v.SignalLost = append(v.SignalLost, SignalLostView{Condition: clinical.SignalLostCondition(s.Kind), Kind: s.Kind, After: s.After.String(), Priority: string(s.Priority)})
	}
	for _, c := range rs.Conditions {
		v.Conditions = append(v.Conditions, ConditionRuleView{Condition: c.Condition, Kind: c.Kind, Below: c.Below, Abs: c.Abs, Limit: c.Limit,
			AsleepLimit: c.AsleepLimit, Priority: string(c.Priority), Delay: c.Delay.String(), ResolveAfter: c.ResolveAfter.String()})
	}
	return v
}

// PoliciesView is the engine-wide policies as the API shows them, beside
// a patient's rule set.
type PoliciesView struct {
	Lateness struct {
		ReorderWindow string `json:"reorder_window"`
		MaxAge        string `json:"max_age"`
	} `json:"lateness"`
	Copies      string `json:"copies"`
	SleepMaxAge string `json:"sleep_max_age"`
	NEWS2       struct {
		Require      []schemas.Kind `json:"require"`
		MaxAge       string         `json:"max_age"`
		Delay        string         `json:"delay"`
		ResolveAfter string         `json:"resolve_after"`
		UpdateEvery  string         `json:"update_every"`
		SetWindow    string         `json:"set_window"`
	} `json:"news2"`
	Silence struct {
		Max              string `json:"max"`
		SilencesHigh     bool   `json:"silences_high"`
		PausesEscalation bool   `json:"pauses_escalation"`
	} `json:"silence"`
	PatientExpiry struct {
		Idle          string `json:"idle"`
		Unestablished string `json:"unestablished"`
	} `json:"patient_expiry"`
}

// policiesView is the engine-wide policies of c.
func policiesView(c *clinical.Config) PoliciesView {
	var v PoliciesView
	v.Lateness.ReorderWindow, v.Lateness.MaxAge = c.ReorderWindow.String(), c.MaxAge.String()
	v.Copies = "a reading whose (device_id, kind, seq) was applied already changes nothing"
	v.SleepMaxAge = c.SleepMaxAge.String()
	v.NEWS2.Require = slices.Clone(c.NEWS2Require)
	v.NEWS2.MaxAge, v.NEWS2.Delay, v.NEWS2.ResolveAfter, v.NEWS2.UpdateEvery = c.NEWS2MaxAge.String(), c.NEWS2Delay.String(),
		c.NEWS2ResolveAfter.String(), c.NEWS2UpdateEvery.String()
	v.NEWS2.SetWindow = c.NEWS2SetWindow.String()
	v.Silence.Max = (schemas.MaxSilenceSeconds * time.Second).String()
	v.PatientExpiry.Idle, v.PatientExpiry.Unestablished = c.ExpireIdle.String(), c.ExpireUnestablished.String()
	return v
}
