package producers

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/testkit"
	"github.com/monitorme/monitorme/schemas"
)

// A request whose wait was cut short leaves its readings in flight, and
// they may still be written: Close must deliver them before it closes the
// client, not drop them.
func TestProducerCloseFlushesWhatIsInFlight(t *testing.T) {
	c, kc := testkit.CreateCluster(t, 2)
	p, err := NewProducer(DefaultProducerConfig(), kc, telemetry.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// Until released, every produce request fails as a dropped
	// connection does: the client keeps the readings and retries.
	var held atomic.Bool
	held.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if held.Load() {
			return nil, errors.New("connection dropped by the test"), true
		}
		return nil, nil, false
	})
	rs := []schemas.Reading{
		{PatientID: "P1", DeviceID: "D1", Kind: schemas.HeartRate, Value: 72, Unit: "/min", TS: time.Now().UTC(), Seq: 1},
		{PatientID: "P2", DeviceID: "D2", Kind: schemas.SpO2, Value: 97, Unit: "%", TS: time.Now().UTC(), Seq: 1},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Produce(ctx, rs); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("produce with the broker held: %v, want ErrAckTimeout", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	held.Store(false)
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := testkit.ReadAll(t, c, kc.Topics.Vitals, kgo.ReadCommitted()); len(got) != len(rs) {
		t.Fatalf("%d readings on the topic after Close, want %d", len(got), len(rs))
	}
}

func TestNewProducerRefusesBadSettings(t *testing.T) {
	pc := DefaultProducerConfig()
	pc.Compression = "brotli"
	_, kc := testkit.CreateCluster(t, 1)
	if _, err := NewProducer(pc, kc, nil); err == nil {
		t.Fatal("compression brotli accepted")
	}
}
