package clinical

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
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

// LoadRules reads rules from r (named name in errors) over
// DefaultConfig. Every error names the line and what is wrong.
func LoadRules(name string, r io.Reader) (Config, error) {
	cfg := DefaultConfig()
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
