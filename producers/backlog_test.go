package producers

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/internal/web"
)

// Ingest sheds load while the alert processors are more than MaxBacklog
// readings behind the vitals topic: 503 with Retry-After, nothing of the
// batch written. With no processor group at work (nothing committed) the
// backlog is unknown and nothing is shed; once the processors catch up,
// batches are taken again. Before (issue 28), ingest took every batch the
// brokers did, at twice the sustainable rate too, and the backlog grew
// without bound.
func TestIngestShedsWhileTheProcessorsAreBehind(t *testing.T) {
	c, kc := testkit.CreateCluster(t, 4)
	tel := telemetry.Nop()
	p, err := NewProducer(DefaultProducerConfig(), kc, tel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ic := DefaultIngestConfig()
	ic.MaxBacklog = 40
	in, err := NewIngest(ic, p, slog.New(slog.DiscardHandler), tel.MeterProvider)
	if err != nil {
		t.Fatal(err)
	}
	adm := testkit.Admin(t, c)
	backlog := NewBacklog(adm, "alerting", kc.Topics.Vitals)
	in.ShedWith(backlog)
	e := web.New(slog.New(slog.DiscardHandler), tel)
	in.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	url := srv.URL + "/v1/vitals"
	ctx := testkit.Context(t)
	send := func(what string, want int) {
		t.Helper()
		body, _ := json.Marshal(batch(50, time.Now().UTC().Add(-time.Second)))
		resp, b := post(t, url, "application/json", body)
		if resp.StatusCode != want {
			t.Fatalf("%s: %d %s, want %d", what, resp.StatusCode, b, want)
		}
		if want == http.StatusServiceUnavailable && (resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), "readings behind")) {
			t.Fatalf("%s: Retry-After %q, %s", what, resp.Header.Get("Retry-After"), b)
		}
	}
	commitAt := func(end bool) {
		t.Helper()
		ends, err := adm.ListEndOffsets(ctx, kc.Topics.Vitals)
		if err != nil {
			t.Fatal(err)
		}
		offs := kadm.Offsets{}
		ends.Each(func(o kadm.ListedOffset) {
			at := int64(0)
			if end {
				at = o.Offset
			}
			offs.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: at, LeaderEpoch: -1})
		})
		if err := adm.CommitAllOffsets(ctx, "alerting", offs); err != nil {
			t.Fatal(err)
		}
		backlog.measure(ctx)
	}

	backlog.measure(ctx)
	send("no processor has committed (backlog unknown)", http.StatusAccepted)
	commitAt(false) // the processors have read nothing of the 50
	if lag, ok := backlog.Lag(); !ok || lag != 50 {
		t.Fatalf("backlog %d (known %v), want 50", lag, ok)
	}
	send("50 readings behind, 40 allowed (all refused from 40)", http.StatusServiceUnavailable)
	if n := len(testkit.ReadAll(t, c, kc.Topics.Vitals, kgo.ReadCommitted())); n != 50 {
		t.Fatalf("%d readings on the topic, want the first batch's 50 alone", n)
	}
	commitAt(true)
	send("caught up", http.StatusAccepted)

	// Near the memory limit: shed whatever the backlog.
	old := debug.SetMemoryLimit(1)
	backlog.measure(context.Background())
	debug.SetMemoryLimit(old)
	resp, b := post(t, url, "application/json", []byte("[]"))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "memory limit") {
		t.Fatalf("near the memory limit: %d %s", resp.StatusCode, b)
	}
}
