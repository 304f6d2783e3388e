package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
)

// AckWriter records an acknowledgement as an event on the acks topic and
// returns once the broker has it.
type AckWriter interface {
	WriteAck(ctx context.Context, a schemas.Ack) error
	// WriteSilence records an alarm silence the same way.
	WriteSilence(ctx context.Context, s schemas.Silence) error
}

// Option configures a Server.
type Option func(*Server)

// WithAcks enables POST /v1/alerts/{id}/ack.
func WithAcks(w AckWriter) Option { return func(s *Server) { s.acks = w } }

// WithRules sets the clinical rules GET /v1/patients/{id}/rules shows
// and GET /v1/patients/{id} scores NEWS2 by (rules.go). Without it that
// route answers 501.
func WithRules(rules *clinical.Config) Option { return func(s *Server) { s.rules = rules } }

// AckRequest is the body of POST /v1/alerts/{id}/ack. By may be left
// out: who acknowledges is the token's subject.
type AckRequest struct {
	By string `json:"by"`
}

// actor returns who acts and how they were authenticated: the subject of
// the caller's token, never the body's by, which may only repeat it. On a
// server without authentication (--insecure) the body's by is all there
// is, and it is required.
func actor(c echo.Context, by string) (who, how string, err error) {
	p, ok := auth.FromContext(c)
	if !ok || p.Method == "none" {
		if msg := schemas.CheckActor(by); msg != "" {
			return "", "", fieldProblem("Invalid request", []schemas.FieldError{{Field: "by", Reason: msg + " (who acts: a user or station id; this server has no authentication to take it from)"}})
		}
		return by, "none", nil
	}
	if by != "" && by != p.Subject {
		p := web.NewProblem(http.StatusForbidden, "by: "+schemas.Quote(by)+" is not you: who acts is taken from your token (subject "+p.Subject+"); leave by out")
		p.Title = "Not allowed"
		return "", "", p
	}
	if msg := schemas.CheckActor(p.Subject); msg != "" {
		return "", "", web.NewProblem(http.StatusForbidden, "your token's subject cannot be recorded as who acts: it "+msg+" (set --auth-subject-claim to another claim)")
	}
	return p.Subject, p.Method, nil
}

func (s *Server) ack(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if !schemas.IsAlertID(id) {
		return badQuery([]schemas.FieldError{{Field: "id", Reason: "is not an alert id (32 lowercase hex digits): " + schemas.Quote(id)}})
	}
	var req AckRequest
	if err := ackBody.read(c, &req); err != nil {
		return err
	}
	by, how, err := actor(c, req.By)
	if err != nil {
		return err
	}
	a, ok := s.live.Alert(id)
	if !ok {
		return web.NewProblem(http.StatusNotFound, "no alert "+id+" in the live view (alerts of the last "+s.live.cfg.AlertsLookback.String()+")")
	}
	switch a.State {
	case schemas.Resolved:
		return web.NewProblem(http.StatusConflict, "alert "+id+" is resolved; there is nothing to acknowledge")
	case schemas.Acknowledged:
		return c.JSON(http.StatusOK, map[string]any{"alert": a, "note": "already acknowledged"})
	}
	if s.acks == nil {
		return web.NewProblem(http.StatusNotImplemented, "this server does not write acknowledgements")
	}
	ack := schemas.Ack{AlertID: id, PatientID: a.PatientID, By: by, Auth: how, TS: time.Now().UTC()}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 10*time.Second)
	defer cancel()
	if err := s.acks.WriteAck(ctx, ack); err != nil {
		c.Response().Header().Set("Retry-After", "1")
		return web.NewProblem(http.StatusServiceUnavailable, "the acknowledgement was not stored (brokers unavailable); retry")
	}
	// 202: the processor turns it into an "acknowledged" alert event,
	// which GET /v1/alerts and the stream then show.
	return c.JSON(http.StatusAccepted, map[string]any{"ack": ack})
}

// maxAckBody bounds an acknowledgement's body: it holds one short id.
const maxAckBody = 4096

// smallBody is the small JSON object a clinician's action sends: what it
// is (for messages), the problem's title, an example, and the shape a
// malformed one is told to have.
type smallBody struct{ what, title, example, want string }

var (
	ackBody     = smallBody{"an acknowledgement", "Invalid acknowledgement", `{}`, `{} (or {"by": "<user or station id>"} on a server without authentication)`}
	silenceBody = smallBody{"a silence", "Invalid alarm silence", `{"seconds":120}`, `{"seconds": 120}`}
)

// read decodes the request's body into v: 415 for another content type,
// 413 beyond maxAckBody, a field problem unless it is exactly one object
// with no unknown field and nothing after it.
//
// An empty body is an empty object: with authentication every field is
// optional (curl -X POST needs none). It is safe without a Content-Type
// because a browser's session cookie is never accepted on a POST.
func (b smallBody) read(c echo.Context, v any) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxAckBody+1))
	if err != nil {
		return web.NewProblem(http.StatusBadRequest, "read body: "+err.Error())
	}
	if len(body) == 0 {
		return nil
	}
	if ct := c.Request().Header.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return web.NewProblem(http.StatusUnsupportedMediaType, "send "+b.what+" as application/json, e.g. "+b.example)
	}
	if len(body) > maxAckBody {
		return web.NewProblem(http.StatusRequestEntityTooLarge, b.what+" body is at most 4 KiB: "+b.example)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil && len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		err = errors.New("data after the object")
	}
	if err != nil {
		return fieldProblem(b.title, []schemas.FieldError{{Field: "body", Reason: "is not the JSON object " + b.want + ": " + err.Error()}})
	}
	return nil
}

// SilenceRequest is the body of POST /v1/patients/{id}/silence.
type SilenceRequest struct {
	By string `json:"by"`
	// Seconds is how long: 1 to schemas.MaxSilenceSeconds, default 120;
	// 0 ends a silence. A JSON number: 90.0 is the integer 90 in JSON
	// Schema, and so in the document; as an int field it was refused.
	Seconds *float64 `json:"seconds"`
}

// silence writes an alarm silence (audio pause) of the patient's medium
// and low priority alarms; a high priority alarm is never silenced.
func (s *Server) silence(c echo.Context) error {
	id, err := patientPath(c)
	if err != nil {
		return err
	}
	var req SilenceRequest
	if err := silenceBody.read(c, &req); err != nil {
		return err
	}
	by, how, err := actor(c, req.By)
	if err != nil {
		return err
	}
	sil := schemas.Silence{PatientID: id, By: by, Auth: how, Seconds: 120, TS: time.Now().UTC()}
	if req.Seconds != nil {
		n := *req.Seconds
		if n != math.Trunc(n) || n < 0 || n > schemas.MaxSilenceSeconds {
			return fieldProblem("Invalid alarm silence", []schemas.FieldError{{Field: "seconds", Reason: fmt.Sprintf("want whole seconds from 0 to %d, got %v", schemas.MaxSilenceSeconds, n)}})
		}
		sil.Seconds = int(n)
	}
	if err := sil.Validate(); err != nil {
		return fieldProblem("Invalid alarm silence", []schemas.FieldError{{Field: "body", Reason: err.Error()}})
	}
	if s.acks == nil {
		return web.NewProblem(http.StatusNotImplemented, "this server does not write alarm silences")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 10*time.Second)
	defer cancel()
	if err := s.acks.WriteSilence(ctx, sil); err != nil {
		c.Response().Header().Set("Retry-After", "1")
		return web.NewProblem(http.StatusServiceUnavailable, "the silence was not stored (brokers unavailable); retry")
	}
	return c.JSON(http.StatusAccepted, map[string]any{"silence": sil,
		"until": sil.TS.Add(time.Duration(sil.Seconds) * time.Second), "note": "medium and low priority alarms of the patient are raised silenced until then; a high priority alarm never is"})
}

// PatientRules is the body of GET /v1/patients/{id}/rules.
type PatientRules struct {
	PatientID string `json:"patient_id"`
	// Source is "patient" when the rules file names the patient (with
	// its ward's rules under it, if any), else "defaults".
	Source string `json:"source"`
	// Rules is the rule set in force (schema RuleSet in openapi.json).
	Rules PatientRulesView `json:"rules"`
}

func (s *Server) patientRules(c echo.Context) error {
	id, err := patientPath(c)
	if err != nil {
		return err
	}
	if s.rules == nil {
		return web.NewProblem(http.StatusNotImplemented, "this server has no clinical rules configured")
	}
	rules := patientRulesView(s.rules, id)
	src := "defaults"
	if s.rules.Named(id) {
		src = "patient"
	}
	return c.JSON(http.StatusOK, PatientRules{PatientID: id, Source: src, Rules: rules})
}

// AlarmSummary is the body of GET /v1/alarms/summary: the alarm burden.
type AlarmSummary struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Alarms counts distinct alerts raised in the window (an alert
	// raised again at a higher priority counts once, at its highest).
	Alarms int `json:"alarms"`
	// Patients counts the patients in view: with a reading or an alert.
	Patients int `json:"patients"`
	// PerPatientPerDay is Alarms / Patients / days of the window.
	PerPatientPerDay float64        `json:"per_patient_per_day"`
	ByPriority       map[string]int `json:"by_priority"`
	ByCondition      map[string]int `json:"by_condition"`
	ByWard           map[string]int `json:"by_ward"`
	// Escalated, Acknowledged and Resolved count alerts of the window
	// that reached that state.
	Escalated    int `json:"escalated"`
	Acknowledged int `json:"acknowledged"`
	Resolved     int `json:"resolved"`
	// Latched counts alerts that resolved before anyone acknowledged
	// them (resolved-unacknowledged).
	Latched   int             `json:"latched"`
	ByPatient []PatientBurden `json:"by_patient"`
}

// PatientBurden is one patient's row of the alarm summary.
type PatientBurden struct {
	PatientID   string         `json:"patient_id"`
	Ward        string         `json:"ward,omitempty"`
	Alarms      int            `json:"alarms"`
	PerDay      float64        `json:"per_day"`
	ByPriority  map[string]int `json:"by_priority"`
	ByCondition map[string]int `json:"by_condition"`
}

func (s *Server) alarmSummary(c echo.Context) error {
	window := 24 * time.Hour
	if v := c.QueryParam("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			return badQuery([]schemas.FieldError{{Field: "window", Reason: "must be whole minutes or hours, at least 1m, got " + strconv.Quote(v)}})
		}
		window = d
	}
	// The view holds the alerts of its lookback: a longer window is cut
	// to it, and since says so (before, a 400 that a client could not
	// foresee: the lookback is the server's setting).
	window = min(window, s.live.cfg.AlertsLookback)
	until := time.Now().UTC()
	since := until.Add(-window)
	type alarm struct {
		patient, condition string
		// ward is where the patient was when the alarm was raised.
		ward     string
		priority schemas.Priority
		states   map[schemas.State]bool
	}
	alarms := map[string]*alarm{}
	s.live.AlertEvents(since, func(a *schemas.Alert) {
		if a.Updated {
			return // the same alarm, its content brought up to date
		}
		al := alarms[a.AlertID]
		if al == nil {
			al = &alarm{patient: a.PatientID, condition: a.Condition, priority: a.Priority, states: map[schemas.State]bool{}}
			alarms[a.AlertID] = al
		}
		if a.Priority.Rank() > al.priority.Rank() {
			al.priority = a.Priority
		}
		if a.State == schemas.Raised {
			al.ward = a.Ward
		}
		al.states[a.State] = true
	})
	days := window.Hours() / 24
	sum := AlarmSummary{Since: since, Until: until, Patients: len(s.live.Patients()),
		ByPriority: map[string]int{}, ByCondition: map[string]int{}, ByWard: map[string]int{}, ByPatient: []PatientBurden{}}
	per := map[string]*PatientBurden{}
	for _, al := range alarms {
		if !al.states[schemas.Raised] {
			continue // raised before the window
		}
		ward := al.ward
		sum.Alarms++
		sum.ByPriority[string(al.priority)]++
		sum.ByCondition[al.condition]++
		sum.ByWard[ward]++
		for st, n := range map[schemas.State]*int{schemas.Escalated: &sum.Escalated, schemas.Acknowledged: &sum.Acknowledged, schemas.Resolved: &sum.Resolved,
			schemas.ResolvedUnacknowledged: &sum.Latched} {
			if al.states[st] {
				*n++
			}
		}
		pb := per[al.patient]
		if pb == nil {
			// The patient's ward now: alarms raised in several wards
			// would otherwise name one of them at random.
			now, _ := s.live.where(al.patient, &schemas.Alert{Ward: ward})
			pb = &PatientBurden{PatientID: al.patient, Ward: now, ByPriority: map[string]int{}, ByCondition: map[string]int{}}
			per[al.patient] = pb
		}
		pb.Alarms++
		pb.ByPriority[string(al.priority)]++
		pb.ByCondition[al.condition]++
	}
	for _, id := range slices.Sorted(maps.Keys(per)) {
		pb := per[id]
		pb.PerDay = round2(float64(pb.Alarms) / days)
		sum.ByPatient = append(sum.ByPatient, *pb)
	}
	if sum.Patients > 0 {
		sum.PerPatientPerDay = round2(float64(sum.Alarms) / float64(sum.Patients) / days)
	}
	return c.JSON(http.StatusOK, sum)
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
