package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// History is the store of past vitals and alerts: ClickHouse, through
// internal/warehouse.
type History interface {
	RawVitals(ctx context.Context, q chschema.VitalsQuery) ([]chschema.RawVital, error)
	VitalBuckets(ctx context.Context, q chschema.VitalsQuery) ([]chschema.VitalBucket, error)
	Alerts(ctx context.Context, q chschema.AlertsQuery) ([]schemas.Alert, error)
}

// WithHistory serves the history endpoints from h.
func WithHistory(h History) Option { return func(s *Server) { s.history = h } }

// Limits of the history endpoints: what a clinician's review of a day
// needs, and no query that scans a year of raw readings.
const (
	MaxRawRange      = 24 * time.Hour
	MaxStepRange     = 366 * 24 * time.Hour
	MinStep          = time.Minute
	MaxStep          = 24 * time.Hour
	MaxBuckets       = 10_000
	MaxHistoryLimit  = 100_000
	DefaultRawLimit  = 10_000
	DefaultAlertsMax = 1_000
	defaultRange     = 24 * time.Hour
)

// VitalsHistory is the body of GET /v1/patients/{id}/vitals.
type VitalsHistory struct {
	PatientID string    `json:"patient_id"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	// Step is empty for raw readings.
	Step string `json:"step,omitempty"`
	// Truncated says the limit cut the answer: ask for a shorter range.
	Truncated bool     `json:"truncated"`
	Series    []Series `json:"series"`
}

// Series is one vital's points, oldest first.
type Series struct {
	Kind    schemas.Kind `json:"kind"`
	Unit    string       `json:"unit"`
	Points  []RawPoint   `json:"points,omitempty"`
	Buckets []Bucket     `json:"buckets,omitempty"`
}

// RawPoint is one reading.
type RawPoint struct {
	TS       time.Time `json:"ts"`
	Value    float64   `json:"value"`
	DeviceID string    `json:"device_id"`
	Seq      uint64    `json:"seq"`
}

// Bucket summarises the readings of one step.
type Bucket struct {
	TS      time.Time `json:"ts"`
	Min     float64   `json:"min"`
	Avg     float64   `json:"avg"`
	Max     float64   `json:"max"`
	Samples uint64    `json:"samples"`
}

// AlertsHistory is the body of GET /v1/patients/{id}/alerts.
type AlertsHistory struct {
	PatientID string          `json:"patient_id"`
	From      time.Time       `json:"from"`
	To        time.Time       `json:"to"`
	Truncated bool            `json:"truncated"`
	Alerts    []schemas.Alert `json:"alerts"`
}

// historyParams reads the parameters both endpoints share. Every problem
// is collected, so one answer names all of them.
type historyParams struct {
	problems []schemas.FieldError
}

func (h *historyParams) bad(field, format string, args ...any) {
	h.problems = append(h.problems, schemas.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (h *historyParams) instant(c echo.Context, name string, def time.Time) time.Time {
	v := c.QueryParam(name)
	if v == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		h.bad(name, "is not an RFC 3339 time: %q", v)
		return def
	}
	return t.UTC()
}

// window reads from and to: by default the 24 hours before now.
func (h *historyParams) window(c echo.Context, maxRange time.Duration) (from, to time.Time) {
	to = h.instant(c, "to", time.Now().UTC())
	from = h.instant(c, "from", to.Add(-defaultRange))
	switch {
	case !from.Before(to):
		h.bad("from", "must be before to (from %s, to %s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	case to.Sub(from) > maxRange:
		h.bad("to", "the range is %v, longer than %v: ask for a shorter range%s", to.Sub(from), maxRange, rangeHint(maxRange))
	}
	return from, to
}

func rangeHint(maxRange time.Duration) string {
	if maxRange == MaxRawRange {
		return ", or for buckets with step="
	}
	return ""
}

func (h *historyParams) limit(c echo.Context, def int) int {
	v := c.QueryParam("limit")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxHistoryLimit {
		h.bad("limit", "must be an integer from 1 to %d, got %q", MaxHistoryLimit, v)
		return def
	}
	return n
}

func (s *Server) vitalsHistory(c echo.Context) error {
	id, err := patientPath(c)
	if err != nil {
		return err
	}
	var h historyParams
	kind := c.QueryParam("kind")
	if kind != "" {
		if _, ok := schemas.SpecFor(schemas.Kind(kind)); !ok {
			h.bad("kind", "unknown vital %q; see GET /v1/schemas/%s.schema.json", kind, schemas.ReadingV1)
		}
	}
	var step time.Duration
	maxRange := MaxRawRange
	if v := c.QueryParam("step"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			h.bad("step", "is not a duration such as 1m, 15m or 1h: %q", v)
		case d < MinStep || d > MaxStep || d%MinStep != 0:
			h.bad("step", "must be whole minutes from %v to %v, got %v", MinStep, MaxStep, d)
		default:
			step, maxRange = d, MaxStepRange
		}
	}
	from, to := h.window(c, maxRange)
	limit := h.limit(c, DefaultRawLimit)
	if step > 0 {
		if n := to.Sub(from) / step; n > MaxBuckets {
			h.bad("step", "%v over %v is %d buckets, more than %d: ask for a longer step", step, to.Sub(from), n, MaxBuckets)
		}
		// Every bucket of every kind fits: limit applies to readings.
		limit = (MaxBuckets + 1) * schemas.NumKinds
	}
	if h.problems != nil {
		return badQuery(h.problems)
	}
	if s.history == nil {
		return noHistory()
	}
	q := chschema.VitalsQuery{Patient: id, Kind: kind, From: from, To: to, Step: step, Limit: limit + 1}
	out := VitalsHistory{PatientID: id, From: from, To: to, Series: []Series{}}
	ctx := c.Request().Context()
	if step == 0 {
		rows, err := s.history.RawVitals(ctx, q)
		if err != nil {
			return historyUnavailable(err)
		}
		if len(rows) > limit {
			rows, out.Truncated = rows[:limit], true
		}
		for _, r := range rows {
			se := series(&out, r.Kind)
			if se.Unit == "" {
				se.Unit = r.Unit
			}
			se.Points = append(se.Points, RawPoint{TS: r.TS.UTC(), Value: r.Value, DeviceID: r.DeviceID, Seq: r.Seq})
		}
		return c.JSON(http.StatusOK, out)
	}
	out.Step = step.String()
	rows, err := s.history.VitalBuckets(ctx, q)
	if err != nil {
		return historyUnavailable(err)
	}
	for _, r := range rows {
		se := series(&out, r.Kind)
		se.Buckets = append(se.Buckets, Bucket{TS: r.TS.UTC(), Min: r.Min, Avg: r.Avg, Max: r.Max, Samples: r.Samples})
	}
	return c.JSON(http.StatusOK, out)
}

// series is kind's series in out, added if new: the rows come ordered
// by kind, so it is the last one or a new one.
func series(out *VitalsHistory, kind string) *Series {
	if n := len(out.Series); n > 0 && string(out.Series[n-1].Kind) == kind {
		return &out.Series[n-1]
	}
	se := Series{Kind: schemas.Kind(kind)}
	if spec, ok := schemas.SpecFor(se.Kind); ok {
		se.Unit = spec.Unit
	}
	out.Series = append(out.Series, se)
	return &out.Series[len(out.Series)-1]
}

func (s *Server) alertsHistory(c echo.Context) error {
	id, err := patientPath(c)
	if err != nil {
		return err
	}
	var h historyParams
	from, to := h.window(c, MaxStepRange)
	limit := h.limit(c, DefaultAlertsMax)
	if h.problems != nil {
		return badQuery(h.problems)
	}
	if s.history == nil {
		return noHistory()
	}
	alerts, err := s.history.Alerts(c.Request().Context(), chschema.AlertsQuery{Patient: id, From: from, To: to, Limit: limit + 1})
	if err != nil {
		return historyUnavailable(err)
	}
	out := AlertsHistory{PatientID: id, From: from, To: to, Alerts: alerts}
	if len(alerts) > limit {
		out.Alerts, out.Truncated = alerts[:limit], true
	}
	if out.Alerts == nil {
		out.Alerts = []schemas.Alert{}
	}
	return c.JSON(http.StatusOK, out)
}

func noHistory() error {
	return web.NewProblem(http.StatusNotImplemented,
		"history is served from ClickHouse, and this deployment has none configured (--clickhouse-addr); live data: GET /v1/patients/{id}/vitals/latest, GET /v1/alerts, GET /v1/stream")
}

// historyUnavailable is a 503: the request was good, the store did not
// answer. The error is logged, not shown: it may carry server details.
func historyUnavailable(err error) error {
	p := web.NewProblem(http.StatusServiceUnavailable, "the history store (ClickHouse) did not answer; try again shortly")
	p.RetryAfter, p.Cause = 5*time.Second, err
	return p
}
