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
	Defaults layer                 `yaml:"defaults"`
	Wards    map[string]layer      `yaml:"wards"`
	Patients map[string]patientDoc `yaml:"patients"`
}

type news2File struct {
	MaxAge       *duration `yaml:"max_age"`
	ResolveAfter *duration `yaml:"resolve_after"`
}

type layer struct {
	NEWS2       *bool                    `yaml:"news2"`
	Hypercapnic *bool                    `yaml:"hypercapnic"`
	Escalation  map[string]duration      `yaml:"escalation"`
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
	f, err := os.Open(path)
	if err != nil {
		return ClinicalConfig{}, fmt.Errorf("rules file: %w", err)
	}
	defer f.Close()
	return LoadRules(path, f)
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
			rs.Escalation = map[schemas.Priority]time.Duration{}
		}
		rs.Escalation[prio] = d.d
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
	spec, ok := schemas.SpecFor(r.Kind)
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
	Ward        string              `json:"ward,omitempty"`
	NEWS2       bool                `json:"news2"`
	Hypercapnic bool                `json:"hypercapnic"`
	Escalation  map[string]string   `json:"escalation"`
	SignalLost  []SignalLostView    `json:"signal_lost"`
	Conditions  []ConditionRuleView `json:"conditions"`
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
	Limit        float64      `json:"limit"`
	AsleepLimit  *float64     `json:"asleep_limit,omitempty"`
	Priority     string       `json:"priority"`
	Delay        string       `json:"delay"`
	ResolveAfter string       `json:"resolve_after"`
}

// View returns the rule set with durations as strings ("15s").
func (rs *RuleSet) View() RuleSetView {
	v := RuleSetView{Ward: rs.Ward, NEWS2: rs.NEWS2, Hypercapnic: rs.Hypercapnic, Escalation: map[string]string{},
		SignalLost: []SignalLostView{}, Conditions: []ConditionRuleView{}}
	for p, d := range rs.Escalation {
		v.Escalation[string(p)] = d.String()
	}
	for _, s := range rs.SignalLost {
		v.SignalLost = append(v.SignalLost, SignalLostView{Condition: SignalLostCondition(s.Kind), Kind: s.Kind, After: s.After.String(), Priority: string(s.Priority)})
	}
	for _, c := range rs.Conditions {
		v.Conditions = append(v.Conditions, ConditionRuleView{Condition: c.Condition, Kind: c.Kind, Below: c.Below, Limit: c.Limit,
			AsleepLimit: c.AsleepLimit, Priority: string(c.Priority), Delay: c.Delay.String(), ResolveAfter: c.ResolveAfter.String()})
	}
	return v
}
