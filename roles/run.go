package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
)

// task is a component's Run.
type task struct {
	name string
	run  func(ctx context.Context) error
}

// runAll runs tasks concurrently until ctx ends or one of them fails, then
// stops them one at a time in the order given, waiting for each: upstream
// first, so that nothing is handed to a component that already stopped
// (the simulator before the ingest server, the server before the producer
// it writes to). It returns the first failure.
func runAll(ctx context.Context, log *slog.Logger, tasks ...task) error {
	type running struct {
		task
		cancel context.CancelFunc
		done   chan error
	}
	failed := make(chan struct{}, len(tasks))
	rs := make([]running, len(tasks))
	for i, t := range tasks {
		tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		rs[i] = running{task: t, cancel: cancel, done: make(chan error, 1)}
		go func() {
			err := t.run(tctx)
			if err != nil {
				failed <- struct{}{}
			}
			rs[i].done <- err
		}()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-failed:
	}
	var errs []error
	for _, r := range rs {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
			}
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("%s: did not stop within 30s", r.name))
		}
		log.Debug("stopped", "component", r.name)
	}
	return errors.Join(errs...)
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another monitorme running? see --http-addr)", addr, err)
	}
	return ln, nil
}

// provision creates or checks the topics and returns an admin client for
// readiness checks; close its client when done.
func provision(ctx context.Context, kc *kafka.Config, tel *telemetry.Telemetry, log *slog.Logger) (*kadm.Client, error) {
	cl, err := kc.NewClient("admin", tel.KafkaHooks(nil))
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	adm := kadm.NewClient(cl)
	if err := kafka.Ping(ctx, cl, kc, startPing); err != nil {
		cl.Close()
		return nil, fmt.Errorf("%w (brokers %v)", err, kc.Brokers)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafka.Provision(pctx, adm, kc, kc.Specs(), log); err != nil {
		cl.Close()
		return nil, fmt.Errorf("%w (brokers %v)", kc.Explain(err), kc.Brokers)
	}
	return adm, nil
}

// startPing bounds the check that a role reaches its cluster at start.
const startPing = 10 * time.Second

func adminOnly(ctx context.Context, kc *kafka.Config, tel *telemetry.Telemetry) (*kadm.Client, error) {
	cl, err := kc.NewClient("admin", tel.KafkaHooks(nil))
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	if err := kafka.Ping(ctx, cl, kc, startPing); err != nil {
		cl.Close()
		return nil, fmt.Errorf("%w (brokers %v)", err, kc.Brokers)
	}
	return kadm.NewClient(cl), nil
}
