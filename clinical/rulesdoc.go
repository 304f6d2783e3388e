package clinical

// The rules file's YAML document: each layer's fields, strictly
// decoded, with the line of each for the errors (rulesfile.go applies it).

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

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
