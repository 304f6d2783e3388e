package processors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/monitorme/monitorme/schemas"
)

// The rules file changes the built-in defaults in three layers: defaults
// for everyone, per ward, per patient (docs/rules.md). Each layer names
// only what it changes. Every field is checked when the file is loaded, and
// a mistake is reported with its line, so a processor never starts with a
// limit nobody meant.

type rulesFile struct {
	NEWS2    news2File             `yaml:"news2"`
	Lateness latenessFile          `yaml:"lateness"`
	Sleep    sleepFile             `yaml:"sleep"`
	Defaults layer                 `yaml:"defaults"`
	Wards    map[string]layer      `yaml:"wards"`
	Patients map[string]patientDoc `yaml:"patients"`
}

type news2File struct {
	MaxAge       *duration `yaml:"max_age"`
	ResolveAfter *duration `yaml:"resolve_after"`
	Delay        *duration `yaml:"delay"`
	UpdateEvery  *duration `yaml:"update_every"`
	SetWindow    *duration `yaml:"set_window"`
	Require      []string  `yaml:"require"`
}

type latenessFile struct {
	ReorderWindow *duration `yaml:"reorder_window"`
	MaxAge        *duration `yaml:"max_age"`
}

type sleepFile struct {
	MaxAge *duration `yaml:"max_age"`
}

type layer struct {
	NEWS2       *bool                    `yaml:"news2"`
	Hypercapnic *bool                    `yaml:"hypercapnic"`
	Escalation  map[string]tiersDoc      `yaml:"escalation"`
	Latch       *string                  `yaml:"latch"`
	SatSeconds  *satSecondsDoc           `yaml:"satseconds"`
	SignalLost  map[string]signalLostDoc `yaml:"signal_lost"`
	Conditions  map[string]conditionDoc  `yaml:"conditions"`
	line        int
}

type patientDoc struct {
	Ward string
	layer
}

type signalLostDoc struct {
	After    *duration `yaml:"after"`
	Priority *string   `yaml:"priority"`
	Disabled bool      `yaml:"disabled"`
	line     int
}

type conditionDoc struct {
	Kind         *string   `yaml:"kind"`
	Below        *bool     `yaml:"below"`
	Limit        *float64  `yaml:"limit"`
	AsleepLimit  *float64  `yaml:"asleep_limit"`
	Priority     *string   `yaml:"priority"`
	Delay        *duration `yaml:"delay"`
	ResolveAfter *duration `yaml:"resolve_after"`
	Disabled     bool      `yaml:"disabled"`
	line         int
}

// tiersDoc is a priority's escalation: one duration (a single tier that
// repeats, as rules files before tiers said it) or a list of tiers.
type tiersDoc struct {
	tiers []EscalationTier
	line  int
}

func (t *tiersDoc) UnmarshalYAML(n *yaml.Node) error {
	t.line = n.Line
	if n.Kind == yaml.ScalarNode {
		var d duration
		if err := d.UnmarshalYAML(n); err != nil {
			return err
		}
		t.tiers = []EscalationTier{{After: d.d}}
		return nil
	}
	var docs []struct {
		After  duration `yaml:"after"`
		Notify string   `yaml:"notify"`
	}
	if err := n.Decode(&docs); err != nil {
		return fmt.Errorf("line %d: escalation is a duration or a list of {after, notify}: %w", n.Line, err)
	}
	for _, d := range docs {
		if d.After.d <= 0 {
			return fmt.Errorf("line %d: escalation tier: after is required and positive", n.Line)
		}
		t.tiers = append(t.tiers, EscalationTier{After: d.After.d, Notify: d.Notify})
	}
	return nil
}

type satSecondsDoc struct {
	Limit     *float64  `yaml:"limit"`
	Threshold *float64  `yaml:"threshold"`
	Tau       *duration `yaml:"tau"`
	Priority  *string   `yaml:"priority"`
	Disabled  bool      `yaml:"disabled"`
	line      int
}

func (s *satSecondsDoc) UnmarshalYAML(n *yaml.Node) error {
	type plain satSecondsDoc
	if err := decodeStrict(n, (*plain)(s)); err != nil {
		return err
	}
	s.line = n.Line
	return nil
}

// duration is a Go duration string ("15s", "5m"), checked where it is read.
type duration struct {
	d    time.Duration
	line int
}

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 15s, 5m, 1h30m)", n.Line, n.Value)
	}
	if v < 0 {
		return fmt.Errorf("line %d: %s is negative", n.Line, n.Value)
	}
	*d = duration{d: v, line: n.Line}
	return nil
}

func (l *layer) UnmarshalYAML(n *yaml.Node) error {
	type plain layer
	if err := decodeStrict(n, (*plain)(l)); err != nil {
		return err
	}
	l.line = n.Line
	return nil
}

// UnmarshalYAML takes "ward" and reads the rest as a layer.
func (p *patientDoc) UnmarshalYAML(n *yaml.Node) error {
	rest := *n
	rest.Content = nil
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "ward" {
			if err := n.Content[i+1].Decode(&p.Ward); err != nil {
				return err
			}
			continue
		}
		rest.Content = append(rest.Content, n.Content[i], n.Content[i+1])
	}
	if n.Kind != yaml.MappingNode {
		rest.Content = n.Content
	}
	return p.layer.UnmarshalYAML(&rest)
}

func (s *signalLostDoc) UnmarshalYAML(n *yaml.Node) error {
	type plain signalLostDoc
	if err := decodeStrict(n, (*plain)(s)); err != nil {
		return err
	}
	s.line = n.Line
	return nil
}

func (c *conditionDoc) UnmarshalYAML(n *yaml.Node) error {
	type plain conditionDoc
	if err := decodeStrict(n, (*plain)(c)); err != nil {
		return err
	}
	c.line = n.Line
	return nil
}

// decodeStrict decodes a mapping node into the struct v points to, refusing
// keys v has no field for: Node.Decode, which custom unmarshalers must use,
// does not apply the decoder's KnownFields.
func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind == yaml.MappingNode {
		known := map[string]bool{}
		t := reflect.TypeOf(v).Elem()
		for i := range t.NumField() {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" {
				known[name] = true
			}
		}
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i]; !known[k.Value] {
				return fmt.Errorf("line %d: field %s not found (known: %s)", k.Line, k.Value, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
			}
		}
	}
	return n.Decode(v)
}

// LoadRulesFile reads a rules file over DefaultClinicalConfig.
func LoadRulesFile(path string) (ClinicalConfig, error) {
	cfg, _, err := ReadRulesFile(path)
	return cfg, err
}

// ReadRulesFile reads a rules file once: the rules over
// DefaultClinicalConfig, and the bytes they were parsed from (what the
// audit trail hashes).
func ReadRulesFile(path string) (ClinicalConfig, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ClinicalConfig{}, nil, fmt.Errorf("rules file: %w", err)
	}
	cfg, err := LoadRules(path, bytes.NewReader(raw))
	return cfg, raw, err
}

// RulesFileFlag registers --rules-file, the one flag every role that
// reads a rules file takes (process, api, replay), its help saying what
// the rules are for there. Before (issue 27), each role registered its
// own, with its own words.
func RulesFileFlag(fs *pflag.FlagSet, p *string, purpose string) {
	fs.StringVar(p, "rules-file", *p, "YAML file of per-ward and per-patient clinical rules (docs/rules.md): "+purpose+"; empty: the built-in defaults")
}

// LoadRules reads rules from r (named name in errors) over
// DefaultClinicalConfig. Every error names the line and what is wrong.
func LoadRules(name string, r io.Reader) (ClinicalConfig, error) {
	cfg := DefaultClinicalConfig()
	b, err := io.ReadAll(r)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", name, err)
	}
	var doc rulesFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	if d := doc.NEWS2.MaxAge; d != nil {
		if d.d < time.Minute {
			return cfg, fail(d.line, "news2.max_age: %v, want at least 1m", d.d)
		}
		cfg.NEWS2MaxAge = d.d
	}
	if d := doc.NEWS2.ResolveAfter; d != nil {
		cfg.NEWS2ResolveAfter = d.d
	}
	if d := doc.NEWS2.Delay; d != nil {
		cfg.NEWS2Delay = d.d
	}
	if d := doc.NEWS2.UpdateEvery; d != nil {
		cfg.NEWS2UpdateEvery = d.d
	}
	if d := doc.NEWS2.SetWindow; d != nil {
		if d.d > time.Hour {
			return cfg, fail(d.line, "news2.set_window: %v, want at most 1h", d.d)
		}
		cfg.NEWS2SetWindow = d.d
	}
	if doc.NEWS2.Require != nil {
		cfg.NEWS2Require = nil
		for _, k := range doc.NEWS2.Require {
			if !slices.Contains(news2Parameters, schemas.Kind(k)) {
				return cfg, fail(0, "news2.require: %q is not a NEWS2 parameter (%v)", k, news2Parameters)
			}
			cfg.NEWS2Require = append(cfg.NEWS2Require, schemas.Kind(k))
		}
	}
	if d := doc.Lateness.ReorderWindow; d != nil {
		if d.d > 10*time.Minute {
			return cfg, fail(d.line, "lateness.reorder_window: %v, want at most 10m", d.d)
		}
		cfg.ReorderWindow = d.d
	}
	if d := doc.Lateness.MaxAge; d != nil {
		cfg.MaxAge = d.d
	}
	if d := doc.Sleep.MaxAge; d != nil {
		cfg.SleepMaxAge = d.d
	}
	if err := doc.Defaults.apply(&cfg.Default, "defaults", fail); err != nil {
		return cfg, err
	}
	wards := map[string]RuleSet{}
	for _, w := range slices.Sorted(maps.Keys(doc.Wards)) {
		rs := cfg.Default.clone()
		rs.Ward = w
		l := doc.Wards[w]
		if err := l.apply(&rs, "wards."+w, fail); err != nil {
			return cfg, err
		}
		wards[w] = rs
	}
	cfg.Wards = map[string]*RuleSet{}
	for w := range wards {
		rs := wards[w]
		cfg.Wards[w] = &rs
	}
	cfg.Patients = map[string]*RuleSet{}
	for _, id := range slices.Sorted(maps.Keys(doc.Patients)) {
		p := doc.Patients[id]
		if msg := schemas.CheckID(id); msg != "" {
			return cfg, fail(p.line, "patients: %q %s", id, msg)
		}
		rs := cfg.Default.clone()
		if p.Ward != "" {
			w, ok := wards[p.Ward]
			if !ok {
				return cfg, fail(p.line, "patients.%s.ward: %q is not under wards", id, p.Ward)
			}
			rs = w.clone()
		}
		if err := p.layer.apply(&rs, "patients."+id, fail); err != nil {
			return cfg, err
		}
		cfg.Patients[id] = &rs
	}
	return cfg, nil
}

func (rs *RuleSet) clone() RuleSet {
	c := *rs
	c.Conditions = slices.Clone(rs.Conditions)
	c.SignalLost = slices.Clone(rs.SignalLost)
	c.Escalation = maps.Clone(rs.Escalation)
	if rs.SatSeconds != nil {
		sat := *rs.SatSeconds
		c.SatSeconds = &sat
	}
	return c
}

type failFunc func(line int, format string, args ...any) error

func priority(s string) (schemas.Priority, bool) {
	switch p := schemas.Priority(s); p {
	case schemas.High, schemas.Medium, schemas.Low:
		return p, true
	}
	return "", false
}

func (l *layer) apply(rs *RuleSet, at string, fail failFunc) error {
	if l.NEWS2 != nil {
		rs.NEWS2 = *l.NEWS2
	}
	if l.Hypercapnic != nil {
		rs.Hypercapnic = *l.Hypercapnic
	}
	for _, p := range slices.Sorted(maps.Keys(l.Escalation)) {
		d := l.Escalation[p]
		prio, ok := priority(p)
		if !ok {
			return fail(d.line, "%s.escalation: %q is not a priority (high, medium, low)", at, p)
		}
		if rs.Escalation == nil {
			rs.Escalation = map[schemas.Priority][]EscalationTier{}
		}
		rs.Escalation[prio] = d.tiers
	}
	if l.Latch != nil {
		if *l.Latch == "none" {
			rs.Latch = ""
		} else if p, ok := priority(*l.Latch); ok {
			rs.Latch = p
		} else {
			return fail(l.line, "%s.latch: %q, want high, medium, low or none", at, *l.Latch)
		}
	}
	if sd := l.SatSeconds; sd != nil {
		if sd.Disabled {
			rs.SatSeconds = nil
		} else {
			r := SatSecondsRule{Limit: 90, Threshold: 50, Tau: time.Minute, Priority: schemas.Medium}
			if rs.SatSeconds != nil {
				r = *rs.SatSeconds
			}
			if sd.Limit != nil {
				if *sd.Limit <= 0 || *sd.Limit > 100 {
					return fail(sd.line, "%s.satseconds.limit: %s, want (0, 100] %%", at, fmtValue(*sd.Limit))
				}
				r.Limit = *sd.Limit
			}
			if sd.Threshold != nil {
				if *sd.Threshold <= 0 {
					return fail(sd.line, "%s.satseconds.threshold: %s, want a positive %%·s", at, fmtValue(*sd.Threshold))
				}
				r.Threshold = *sd.Threshold
			}
			if sd.Tau != nil {
				if sd.Tau.d < time.Second {
					return fail(sd.Tau.line, "%s.satseconds.tau: %v, want at least 1s", at, sd.Tau.d)
				}
				r.Tau = sd.Tau.d
			}
			if sd.Priority != nil {
				p, ok := priority(*sd.Priority)
				if !ok {
					return fail(sd.line, "%s.satseconds.priority: %q, want high, medium or low", at, *sd.Priority)
				}
				r.Priority = p
			}
			rs.SatSeconds = &r
		}
	}
	for _, k := range slices.Sorted(maps.Keys(l.SignalLost)) {
		if err := l.SignalLost[k].apply(rs, schemas.Kind(k), at+".signal_lost."+k, fail); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(l.Conditions)) {
		if err := l.Conditions[name].apply(rs, name, at+".conditions."+name, fail); err != nil {
			return err
		}
	}
	return nil
}

func (s signalLostDoc) apply(rs *RuleSet, kind schemas.Kind, at string, fail failFunc) error {
	if _, ok := schemas.SpecFor(kind); !ok {
		return fail(s.line, "%s: %q is not a vital kind", at, kind)
	}
	i := slices.IndexFunc(rs.SignalLost, func(r SignalLostRule) bool { return r.Kind == kind })
	if s.Disabled {
		if i >= 0 {
			rs.SignalLost = slices.Delete(rs.SignalLost, i, i+1)
		}
		return nil
	}
	r := SignalLostRule{Kind: kind, Priority: schemas.Medium}
	if i >= 0 {
		r = rs.SignalLost[i]
	}
	if s.After != nil {
		if s.After.d < time.Second {
			return fail(s.After.line, "%s.after: %v, want at least 1s", at, s.After.d)
		}
		r.After = s.After.d
	}
	if r.After == 0 {
		return fail(s.line, "%s: after is required (how long without a reading is a lost signal)", at)
	}
	if s.Priority != nil {
		p, ok := priority(*s.Priority)
		if !ok {
			return fail(s.line, "%s.priority: %q, want high, medium or low", at, *s.Priority)
		}
		r.Priority = p
	}
	if i >= 0 {
		rs.SignalLost[i] = r
	} else {
		rs.SignalLost = append(rs.SignalLost, r)
	}
	return nil
}

func (c conditionDoc) apply(rs *RuleSet, name, at string, fail failFunc) error {
	i := slices.IndexFunc(rs.Conditions, func(r ConditionRule) bool { return r.Condition == name })
	if c.Disabled {
		if i < 0 {
			return fail(c.line, "%s: disabled, but there is no such condition", at)
		}
		rs.Conditions = slices.Delete(rs.Conditions, i, i+1)
		return nil
	}
	r := ConditionRule{Condition: name}
	if i >= 0 {
		r = rs.Conditions[i]
	} else if c.Kind == nil || c.Below == nil || c.Limit == nil || c.Priority == nil {
		return fail(c.line, "%s: a new condition needs kind, below, limit and priority", at)
	}
	if c.Kind != nil {
		r.Kind = schemas.Kind(*c.Kind)
	}
	spec, ok := specFor(r.Kind)
	if !ok || len(spec.Discrete) > 0 {
		return fail(c.line, "%s.kind: %q is not a vital kind with a range", at, r.Kind)
	}
	if c.Below != nil {
		r.Below = *c.Below
	}
	inRange := func(field string, v float64) error {
		if v < spec.Min || v > spec.Max {
			return fail(c.line, "%s.%s: %s is outside %s's possible range [%s, %s] %s", at, field,
				fmtValue(v), r.Kind, fmtValue(spec.Min), fmtValue(spec.Max), spec.Unit)
		}
		return nil
	}
	if c.Limit != nil {
		if err := inRange("limit", *c.Limit); err != nil {
			return err
		}
		r.Limit = *c.Limit
	}
	if c.AsleepLimit != nil {
		if err := inRange("asleep_limit", *c.AsleepLimit); err != nil {
			return err
		}
		r.AsleepLimit = limit(*c.AsleepLimit)
	}
	if c.Priority != nil {
		p, ok := priority(*c.Priority)
		if !ok {
			return fail(c.line, "%s.priority: %q, want high, medium or low", at, *c.Priority)
		}
		r.Priority = p
	}
	for field, d := range map[string]*duration{"delay": c.Delay, "resolve_after": c.ResolveAfter} {
		if d != nil && d.d > time.Hour {
			return fail(d.line, "%s.%s: %v, want at most 1h", at, field, d.d)
		}
	}
	if c.Delay != nil {
		r.Delay = c.Delay.d
	}
	if c.ResolveAfter != nil {
		r.ResolveAfter = c.ResolveAfter.d
	}
	if i >= 0 {
		rs.Conditions[i] = r
	} else {
		rs.Conditions = append(rs.Conditions, r)
	}
	return nil
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

// View returns the rule set with durations as strings ("15s").
func (rs *RuleSet) View() RuleSetView {
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
		v.SignalLost = append(v.SignalLost, SignalLostView{Condition: SignalLostCondition(s.Kind), Kind: s.Kind, After: s.After.String(), Priority: string(s.Priority)})
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

// Policies returns the engine-wide policies.
func (c *ClinicalConfig) Policies() PoliciesView {
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
