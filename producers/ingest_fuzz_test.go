package producers

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/schemas"
)

// recorder is a Writer that keeps what it was given.
type recorder struct{ got []schemas.Reading }

func (r *recorder) Produce(_ context.Context, rs []schemas.Reading) error {
	r.got = append(r.got, rs...)
	return nil
}

// Whatever the body and media type, POST /v1/vitals answers 202 or a 4xx
// problem; a 202 writes exactly the readings DecodeBatch finds in the body
// and says how many, and a 4xx writes nothing.
func FuzzIngestHandler(f *testing.F) {
	const ok = `{"patient_id":"P1","device_id":"D1","kind":"heart_rate","value":72,"unit":"/min","ts":"2026-11-22T09:59:59Z","seq":1}`
	f.Add("application/json", "["+ok+"]")
	f.Add("application/x-ndjson", ok+"\n"+ok+" x")
	f.Add("application/jsonl", ok+ok)
	f.Add("", "["+ok+"]")
	f.Add("text/plain", "["+ok+"]")
	f.Fuzz(func(t *testing.T, contentType, body string) {
		w := &recorder{}
		in, err := NewIngest(DefaultIngestConfig(), w, slog.New(slog.DiscardHandler), telemetry.Nop().MeterProvider)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		in.now = func() time.Time { return now }
		e := web.New(slog.New(slog.DiscardHandler), telemetry.Nop())
		in.Register(e)
		req := httptest.NewRequest(http.MethodPost, "/v1/vitals", bytes.NewReader([]byte(body)))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusAccepted:
			// The body read as one of the two shapes is what was written.
			asArray, aerr := schemas.DecodeBatch([]byte(body), false, now)
			asLines, lerr := schemas.DecodeBatch([]byte(body), true, now)
			if len(w.got) == 0 || !(aerr == nil && reflect.DeepEqual(w.got, asArray) || lerr == nil && reflect.DeepEqual(w.got, asLines)) {
				t.Fatalf("202 wrote %d readings that are not the body's: %q", len(w.got), body)
			}
			if want := fmt.Sprintf(`{"accepted":%d}`, len(w.got)); !bytes.Contains(rec.Body.Bytes(), []byte(want)) {
				t.Fatalf("202 body %s, want %s", rec.Body.Bytes(), want)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if len(w.got) != 0 {
				t.Fatalf("%d, yet %d readings written", rec.Code, len(w.got))
			}
		default:
			t.Fatalf("answer %d to %q %q: %s", rec.Code, contentType, body, rec.Body.Bytes())
		}
	})
}
