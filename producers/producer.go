package producers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/schemas"
)

// ErrBusy means the producer's buffer is full: the broker is slower than
// the devices. The request is refused whole rather than queued without
// bound.
var ErrBusy = errors.New("producer buffer full")

// ErrUnavailable means a record could not be acknowledged by the brokers
// within the delivery timeout.
var ErrUnavailable = errors.New("brokers did not acknowledge the readings")

// ErrAckTimeout means the caller's deadline passed before every record was
// acknowledged. The records are still in flight and may yet be written: the
// producer cannot fail a record whose request a broker may have received
// (idempotence forbids it), so only the wait is cut short.
var ErrAckTimeout = errors.New("readings not acknowledged in time")

// ProducerConfig tunes the vitals producer. Idempotence and acks=all are
// not settings: they are what the platform promises.
type ProducerConfig struct {
	Linger          time.Duration
	BatchMaxBytes   int32
	Compression     string
	MaxBuffered     int
	DeliveryTimeout time.Duration
}

// DefaultProducerConfig returns the defaults the flag help names.
func DefaultProducerConfig() ProducerConfig {
	return ProducerConfig{
		Linger:          5 * time.Millisecond,
		BatchMaxBytes:   1 << 20,
		Compression:     "lz4",
		MaxBuffered:     200_000,
		DeliveryTimeout: 15 * time.Second,
	}
}

// RegisterFlags binds c to flags.
func (c *ProducerConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.Linger, "producer-linger", c.Linger, "how long a partition's batch waits for more records")
	fs.Int32Var(&c.BatchMaxBytes, "producer-batch-max-bytes", c.BatchMaxBytes, "largest record batch sent to one partition")
	fs.StringVar(&c.Compression, "producer-compression", c.Compression, "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.IntVar(&c.MaxBuffered, "producer-max-buffered", c.MaxBuffered, "records buffered before ingest answers 503")
	fs.DurationVar(&c.DeliveryTimeout, "producer-delivery-timeout", c.DeliveryTimeout, "how long a record may wait for acknowledgement before ingest answers 503")
}

// Validate refuses settings the producer cannot honor.
func (c *ProducerConfig) Validate() error {
	if _, err := compression(c.Compression); err != nil {
		return err
	}
	switch {
	case c.Linger < 0:
		return fmt.Errorf("producer-linger: %v is negative", c.Linger)
	case c.BatchMaxBytes < 1024:
		return fmt.Errorf("producer-batch-max-bytes: %d, want at least 1024", c.BatchMaxBytes)
	case c.MaxBuffered < 1:
		return fmt.Errorf("producer-max-buffered: %d, want at least 1", c.MaxBuffered)
	case c.DeliveryTimeout < time.Second:
		return fmt.Errorf("producer-delivery-timeout: %v, want at least 1s", c.DeliveryTimeout)
	}
	return nil
}

func compression(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("producer-compression: %q, want none, gzip, snappy, lz4 or zstd", name)
}

// opts returns the client options of the producer.
func (c *ProducerConfig) opts() []kgo.Opt {
	codec, _ := compression(c.Compression)
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// A nil hasher is Kafka's murmur2: a patient lands on the same
		// partition whichever Kafka client produced the reading.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchMaxBytes(c.BatchMaxBytes),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(c.MaxBuffered),
		kgo.RecordDeliveryTimeout(c.DeliveryTimeout),
	}
}

// Producer writes readings to the vitals topic and acknowledgements to the
// acks topic. It owns its Kafka client: Close flushes and closes it.
type Producer struct {
	cfg    ProducerConfig
	cl     *kgo.Client
	topics kafka.Topics
}

// NewProducer validates cfg and builds the producer's client on kcfg's
// brokers; it does no I/O (the client connects on first use). tel traces
// records and counts client metrics; nil is telemetry.Nop().
func NewProducer(cfg ProducerConfig, kcfg kafka.Config, tel *telemetry.Telemetry) (*Producer, error) {
	if err := errors.Join(cfg.Validate(), kcfg.Validate()); err != nil {
		return nil, err
	}
	if tel == nil {
		tel = telemetry.Nop()
	}
	cl, err := kgo.NewClient(append(append(kcfg.ClientOpts("ingest"), cfg.opts()...), tel.KafkaHooks(tel.KafkaTracer("")))...)
	if err != nil {
		return nil, fmt.Errorf("producer client: %w", err)
	}
	return &Producer{cfg: cfg, cl: cl, topics: kcfg.Topics}, nil
}

// Close flushes what is buffered, waiting at most the delivery timeout,
// then closes the client: nothing accepted may be dropped on the way out.
// The error says what a flush could not deliver.
func (p *Producer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DeliveryTimeout)
	defer cancel()
	err := p.cl.Flush(ctx)
	p.cl.Close()
	if err != nil {
		return fmt.Errorf("producer flush at shutdown: %w", err)
	}
	return nil
}

// Produce writes rs and returns once every one of them is acknowledged, or
// with an error once any of them cannot be or ctx ends (ErrAckTimeout).
// ctx carries trace context into the record headers and, if it ends, fails
// the records not yet sent.
//
// On error some readings of rs may still be on the topic: the caller must
// retry the whole batch, and the readings' identities (device, kind, seq)
// let consumers recognize the copies.
func (p *Producer) Produce(ctx context.Context, rs []schemas.Reading) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for i := range rs {
		rec, err := schemas.ReadingRecord(p.topics.Vitals, &rs[i])
		if err != nil {
			fail(err)
			break
		}
		wg.Add(1)
		p.cl.TryProduce(ctx, rec, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				fail(err)
			}
		})
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break // buffer full or closing: stop adding to a failed request
		}
	}
	acked := make(chan struct{})
	go func() { wg.Wait(); close(acked) }()
	select {
	case <-acked:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrAckTimeout, ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case first == nil:
		return nil
	case errors.Is(first, kgo.ErrMaxBuffered):
		return fmt.Errorf("%w: %w", ErrBusy, first)
	case errors.Is(first, context.Canceled):
		return fmt.Errorf("produce readings: %w", first)
	default:
		return fmt.Errorf("%w: %w", ErrUnavailable, first)
	}
}

// WriteSilence writes an alarm silence (alarm-silence.v1) to the acks
// topic, like WriteAck.
func (p *Producer) WriteSilence(ctx context.Context, s schemas.Silence) error {
	rec, err := schemas.SilenceRecord(p.topics.Acks, &s)
	return p.writeOne(ctx, rec, err)
}

// WritePlacement writes a patient's placement (patient-placement.v1) to
// the placements topic, like WriteAck.
func (p *Producer) WritePlacement(ctx context.Context, pl schemas.Placement) error {
	rec, err := schemas.PlacementRecord(p.topics.Placements, &pl)
	return p.writeOne(ctx, rec, err)
}

// WriteAck writes an acknowledgement event (alert-ack.v1) to the acks
// topic, acks=all and idempotent like readings, and returns once the
// broker acknowledged it, or with ErrUnavailable.
func (p *Producer) WriteAck(ctx context.Context, a schemas.Ack) error {
	rec, err := schemas.AckRecord(p.topics.Acks, &a)
	return p.writeOne(ctx, rec, err)
}

// writeOne produces one event the API received (encoded into rec, or
// failed with err) and waits for the broker.
func (p *Producer) writeOne(ctx context.Context, rec *kgo.Record, err error) error {
	if err != nil {
		return err
	}
	if err := p.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}
