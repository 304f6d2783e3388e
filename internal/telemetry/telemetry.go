// Package telemetry sets up OpenTelemetry and Prometheus once per process:
// tracer and meter providers configured from the standard OTEL_* variables
// (nothing is exported unless they ask for it), one Prometheus registry
// served at /metrics holding both the OTel metrics and franz-go's client
// metrics (plugin/kprom), and the Kafka client hooks that carry trace
// context in record headers (plugin/kotel) so that ingest, processing and
// the resulting alert form one trace.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"github.com/twmb/franz-go/plugin/kprom"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/monitorme/monitorme/internal/version"
)

// Telemetry is a process's providers and registry.
type Telemetry struct {
	Registry       *prometheus.Registry
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	// Exporting says spans go somewhere. When they do not, hot paths
	// skip spans altogether and only pass the trace context on.
	Exporting bool

	shutdown []func(context.Context) error
}

// Setup builds the providers. Traces are exported only when
// OTEL_TRACES_EXPORTER or an OTLP endpoint is set; spans are still created
// without an exporter, because their ids are what links ingest to alert in
// record headers.
func Setup(ctx context.Context, service string) (*Telemetry, error) {
	t := &Telemetry{
		Registry:   prometheus.NewRegistry(),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	t.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo(service))

	if os.Getenv("OTEL_SERVICE_NAME") == "" {
		os.Setenv("OTEL_SERVICE_NAME", service)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if configured("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("trace exporter: %w", err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
		t.Exporting = true
	} else {
		// Nothing would read recorded spans: keep them non-recording.
		// They still carry trace ids, so record headers still link
		// ingest to alert, at a fraction of the CPU (measured: span
		// recording was a tenth of the processor's profile).
		tpOpts = append(tpOpts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	t.TracerProvider = tp
	t.shutdown = append(t.shutdown, tp.Shutdown)

	promExp, err := otelprom.New(otelprom.WithRegisterer(t.Registry))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}
	if configured("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("metric exporter: %w", err)
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(mpOpts...)
	t.MeterProvider = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)

	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(t.Propagator)
	return t, nil
}

// buildInfo is the constant monitorme_build_info{version, revision,
// goversion, service} 1, so dashboards can tell which build each pod runs.
func buildInfo(service string) prometheus.Collector {
	v := version.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "monitorme_build_info",
		Help:        "The running build of monitorme: always 1, with its version, revision, Go version and service as labels.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Revision, "goversion": v.GoVersion, "service": service},
	})
	g.Set(1)
	return g
}

// Nop returns telemetry that records nothing and exports nothing, for
// tests and benchmarks that do not look at it. Its registry still works.
func Nop() *Telemetry {
	reg := prometheus.NewRegistry()
	return &Telemetry{
		Registry:       reg,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())),
		MeterProvider:  sdkmetric.NewMeterProvider(),
		Propagator:     propagation.TraceContext{},
	}
}

func configured(vars ...string) bool {
	for _, v := range vars {
		if val := os.Getenv(v); val != "" && val != "none" {
			return true
		}
	}
	return false
}

// KafkaTracer returns a kotel tracer; group names the consumer group the
// client consumes in, if any.
func (t *Telemetry) KafkaTracer(group string) *kotel.Tracer {
	opts := []kotel.TracerOpt{kotel.TracerProvider(t.TracerProvider), kotel.TracerPropagator(t.Propagator)}
	if group != "" {
		opts = append(opts, kotel.ConsumerGroup(group))
	}
	return kotel.NewTracer(opts...)
}

// KafkaHooks returns the client option that wires one new client into the
// process's metrics and, when tracer is not nil, into tracing. Call it once
// per client: kprom's metrics belong to one client each (its OnNewClient
// builds them and OnClientClosed unregisters them), told apart in the
// shared registry by the client_id label, so client ids must differ.
func (t *Telemetry) KafkaHooks(tracer *kotel.Tracer) kgo.Opt {
	hooks := []kgo.Hook{kprom.NewMetrics("monitorme", kprom.Registerer(t.Registry), kprom.WithClientLabel())}
	if tracer != nil {
		hooks = append(hooks, kotel.NewKotel(kotel.WithTracer(tracer)).Hooks()...)
	}
	return kgo.WithHooks(hooks...)
}

// Shutdown flushes exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
