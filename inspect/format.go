package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	"github.com/monitorme/monitorme/schemas"
)

// Printer writes events in one of the output formats.
type Printer struct {
	w      io.Writer
	format string
	tmpl   *template.Template
	color  bool
	header bool
}

// NewPrinter returns a printer of format: table (aligned columns, colour
// when color is set), json (one indented object each), jsonl (one a
// line), or a Go template over Event (e.g. '{{.Offset}} {{.Reading.Value}}').
func NewPrinter(w io.Writer, format string, color bool) (*Printer, error) {
	p := &Printer{w: w, format: format, color: color}
	switch format {
	case "table", "json", "jsonl":
	default:
		if !strings.Contains(format, "{{") {
			return nil, fmt.Errorf("format %q: want table, json, jsonl or a Go template such as '{{.Offset}} {{.Key}}'", format)
		}
		t, err := template.New("event").Option("missingkey=zero").Parse(format)
		if err != nil {
			return nil, fmt.Errorf("format: %w", err)
		}
		p.tmpl, p.format = t, "template"
	}
	return p, nil
}

// Print writes one event.
func (p *Printer) Print(ev Event) error {
	switch p.format {
	case "json":
		b, err := json.MarshalIndent(ev, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	case "jsonl":
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	case "template":
		if err := p.tmpl.Execute(p.w, ev); err != nil {
			return err
		}
		_, err := fmt.Fprintln(p.w)
		return err
	}
	if !p.header {
		p.header = true
		fmt.Fprintf(p.w, "%-24s %-9s %-12s %-12s %s\n", "TIME", "P/OFFSET", "TYPE", "PATIENT", "WHAT")
	}
	line := fmt.Sprintf("%-24s %-9s %-12s %-12s %s", ev.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"),
		fmt.Sprintf("%d/%d", ev.Partition, ev.Offset), ev.Type, ev.Key, describe(ev))
	if c := p.colorOf(ev); c != "" {
		line = c + line + "\x1b[0m"
	}
	_, err := fmt.Fprintln(p.w, line)
	return err
}

// colorOf is the alarm colour of central stations: high red, medium
// yellow, low cyan; dead letters magenta.
func (p *Printer) colorOf(ev Event) string {
	if !p.color {
		return ""
	}
	if ev.Type == "dead-letter" {
		return "\x1b[35m"
	}
	if ev.Alert == nil || ev.Alert.State == schemas.Resolved || ev.Alert.State == schemas.Acknowledged {
		return ""
	}
	switch ev.Alert.Priority {
	case schemas.High:
		return "\x1b[1;31m"
	case schemas.Medium:
		return "\x1b[33m"
	case schemas.Low:
		return "\x1b[36m"
	}
	return ""
}

func describe(ev Event) string {
	switch {
	case ev.Type == "dead-letter":
		return fmt.Sprintf("error=%q source=%s value=%s", ev.Error, ev.Source, truncate(string(ev.Value), 80))
	case ev.Reading != nil:
		r := ev.Reading
		return fmt.Sprintf("%s=%g%s device=%s seq=%d ts=%s", r.Kind, r.Value, r.Unit, r.DeviceID, r.Seq, r.TS.UTC().Format(time.RFC3339Nano))
	case ev.Alert != nil:
		a := ev.Alert
		s := fmt.Sprintf("%s %s %s id=%s", a.Condition, a.State, a.Priority, a.AlertID)
		if a.AckedBy != "" {
			s += " by=" + a.AckedBy
		}
		if a.EscalationLevel > 0 {
			s += fmt.Sprintf(" escalation=%d", a.EscalationLevel)
		}
		return s + " " + strconsQuote(a.Message)
	case ev.Ack != nil:
		return fmt.Sprintf("alert=%s by=%s auth=%s", ev.Ack.AlertID, ev.Ack.By, ev.Ack.Auth)
	case ev.Silence != nil:
		return fmt.Sprintf("seconds=%d by=%s auth=%s", ev.Silence.Seconds, ev.Silence.By, ev.Silence.Auth)
	case ev.Rules != nil:
		return fmt.Sprintf("source=%s sha256=%.12s by=%s host=%s", ev.Rules.Source, ev.Rules.SHA256, ev.Rules.By, ev.Rules.Host)
	}
	return truncate(string(ev.Value), 100)
}

func strconsQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
