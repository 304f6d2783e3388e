package kafka_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/testkit"
)

func TestLagCollector(t *testing.T) {
	c, kc := testkit.CreateCluster(t, 1)
	ctx := context.Background()
	cl := testkit.Client(t, c)
	for range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kc.Topics.Vitals, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := testkit.Admin(t, c)
	offs := kadm.Offsets{}
	offs.AddOffset(kc.Topics.Vitals, 0, 4, -1)
	if _, err := adm.CommitOffsets(ctx, "alerting", offs); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(kafka.LagCollector(adm, "alerting"))
	lag, err := testutil.GatherAndCount(reg, "monitorme_consumer_group_lag")
	if err != nil || lag != 1 {
		t.Fatalf("%d lag series, %v", lag, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "monitorme_consumer_group_lag" && mf.Metric[0].GetGauge().GetValue() != 6 {
			t.Fatalf("lag %v, want 6", mf.Metric[0].GetGauge().GetValue())
		}
	}
	c.Close() // the brokers are gone: up 0, and the scrape still works
	if n, err := testutil.GatherAndCount(reg, "monitorme_consumer_group_lag_up"); err != nil || n != 1 {
		t.Fatalf("scrape with the brokers down: %d %v", n, err)
	}
}
