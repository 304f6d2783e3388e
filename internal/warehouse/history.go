package warehouse

import (
	"context"
	"fmt"

	chgo "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
)

// History runs the history API's queries.
type History struct{ DB DB }

// withParams binds the query parameters server side.
func withParams(ctx context.Context, p map[string]string) context.Context {
	return chgo.Context(context.WithValue(ctx, paramsKey{}, p), chgo.WithParameters(chgo.Parameters(p)))
}

type paramsKey struct{}

// boundParams are the parameters withParams bound, which clickhouse-go
// keeps to itself: for the fake DBs of tests.
func boundParams(ctx context.Context) map[string]string {
	p, _ := ctx.Value(paramsKey{}).(map[string]string)
	return p
}

// RawVitals returns readings; q.Step must be zero.
func (h History) RawVitals(ctx context.Context, q chschema.VitalsQuery) ([]chschema.RawVital, error) {
	var out []chschema.RawVital
	text, params := q.SQL()
	return out, h.run(ctx, &out, text, params)
}

// VitalBuckets returns buckets of q.Step from the rollup.
func (h History) VitalBuckets(ctx context.Context, q chschema.VitalsQuery) ([]chschema.VitalBucket, error) {
	var out []chschema.VitalBucket
	text, params := q.SQL()
	return out, h.run(ctx, &out, text, params)
}

// Alerts returns alert events, in the shape the alerts topic carries.
func (h History) Alerts(ctx context.Context, q chschema.AlertsQuery) ([]schemas.Alert, error) {
	var rows []chschema.AlertRow
	text, params := q.SQL()
	if err := h.run(ctx, &rows, text, params); err != nil {
		return nil, err
	}
	out := make([]schemas.Alert, len(rows))
	for i, r := range rows {
		out[i] = AlertFromRow(&r)
	}
	return out, nil
}

func (h History) run(ctx context.Context, dest any, text string, params map[string]string) error {
	if err := h.DB.Select(withParams(ctx, params), dest, text); err != nil {
		return fmt.Errorf("history query: %w", err)
	}
	return nil
}

// AlertFromRow turns a row of the alerts table back into the event the
// topic carried.
func AlertFromRow(r *chschema.AlertRow) schemas.Alert {
	a := schemas.Alert{
		AlertID: r.AlertID, PatientID: r.PatientID, Condition: r.Condition,
		Priority: schemas.Priority(r.Priority), State: schemas.State(r.State), TS: r.TS.UTC(),
		Limit: r.Limit, Message: r.Message, AckedBy: r.AckedBy, Ward: r.Ward, Bed: r.Bed,
		Updated: r.Updated, EscalationLevel: int(r.EscalationLevel), Notify: r.Notify, Silenced: r.Silenced,
		Reading: schemas.Reading{
			PatientID: r.PatientID, DeviceID: r.DeviceID, Kind: schemas.Kind(r.Kind), Value: r.Value,
			Unit: r.Unit, TS: r.ReadingTS.UTC(), Seq: r.Seq,
		},
	}
	if r.Score != nil {
		s := int(*r.Score)
		a.Score = &s
	}
	if len(r.Components) > 0 {
		a.Components = make(map[string]int, len(r.Components))
		for k, v := range r.Components {
			a.Components[k] = int(v)
		}
	}
	return a
}
