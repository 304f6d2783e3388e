package roles

// The platform a role runs: its components, built from the role's flags
// and run together until the first fails or the context ends.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v5"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/monitorme/monitorme/api"
	"github.com/monitorme/monitorme/internal/auth"
	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
	"github.com/monitorme/monitorme/internal/warehouse"
	"github.com/monitorme/monitorme/internal/web"
	"github.com/monitorme/monitorme/processors"
	"github.com/monitorme/monitorme/producers"
	"github.com/monitorme/monitorme/schemas"
	chschema "github.com/monitorme/monitorme/schemas/clickhouse"
	sinkch "github.com/monitorme/monitorme/sinks/clickhouse"
)

// platform is the set of components a role may run; a nil field is not
// run. Every role builds one, so `dev` and the single roles share the
// wiring.
type platform struct {
	log *slog.Logger
	tel *telemetry.Telemetry
	kc  kafka.Config
	// httpTLS, when set, makes the HTTP server serve HTTPS.
	httpTLS web.TLSFiles
	// auth, when set, authenticates every API request (ingest, api, dev);
	// cors are the origins allowed to call the API from a browser.
	auth *auth.Authenticator
	cors []string
	adm  *kadm.Client

	producer *producers.Producer
	ingest   *producers.Ingest
	backlog  *producers.Backlog
	proc     *processors.Processor
	live     *api.Live
	sim      *producers.Simulator
	sink     *sinkch.Sink
	// ch is the ClickHouse connection, nil when none is configured.
	ch      driver.Conn
	ln      net.Listener
	apiOpts []api.Option
	// groups are the consumer groups whose lag /metrics exports.
	groups []string

	closers []func()
}

func (p *platform) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// roleFlags are the settings shared by the roles.
type roleFlags struct {
	kc        kafka.Config
	pc        producers.ProducerConfig
	ic        producers.IngestConfig
	prc       processors.Config
	lc        api.LiveConfig
	sc        producers.SimConfig
	wc        warehouse.Config
	skc       sinkch.Config
	schema    chschema.Settings
	httpAddr  string
	httpTLS   web.TLSFiles
	provision bool
	// ac is the API's authentication, for the roles that serve the API
	// (apiAuth set by apiSecurity).
	ac      auth.Config
	apiAuth bool
	cors    []string
}

func defaultRoleFlags(httpAddr string) *roleFlags {
	return &roleFlags{
		kc: kafka.DefaultConfig(), pc: producers.DefaultProducerConfig(), ic: producers.DefaultIngestConfig(),
		prc: processors.DefaultConfig(), lc: api.DefaultLiveConfig(), sc: producers.DefaultSimConfig(),
		wc: warehouse.DefaultConfig(), skc: sinkch.DefaultConfig(), schema: chschema.DefaultSettings(),
		httpAddr: httpAddr, provision: true, ac: auth.DefaultConfig(),
	}
}

// apiSecurity adds the flags of a role that serves API routes: who may
// call them, and from which browser origins.
func (f *roleFlags) apiSecurity(cmd *cobra.Command) {
	f.apiAuth = true
	f.ac.RegisterFlags(cmd.Flags())
	cmd.Flags().StringSliceVar(&f.cors, "cors-origins", f.cors, "browser origins allowed to call the API from their pages (https://station.example); none by default")
}

// checkHTTPAddr refuses an --http-addr no listener can take, before
// anything is started or created.
func (f *roleFlags) checkHTTPAddr() error {
	_, port, err := net.SplitHostPort(f.httpAddr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("http-addr: %q is not host:port (e.g. 127.0.0.1:8080, or :8080 for every interface): %w", f.httpAddr, err)
	}
	return nil
}

func (f *roleFlags) common(cmd *cobra.Command) {
	f.kc.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&f.httpAddr, "http-addr", f.httpAddr, "address of the HTTP server (API, /healthz, /readyz, /metrics)")
	cmd.Flags().StringVar(&f.httpTLS.Cert, "http-tls-cert", f.httpTLS.Cert, "PEM certificate chain: the HTTP server serves HTTPS (TLS 1.2+), reading the files again when they change")
	cmd.Flags().StringVar(&f.httpTLS.Key, "http-tls-key", f.httpTLS.Key, "PEM private key of --http-tls-cert")
	cmd.Flags().BoolVar(&f.provision, "provision", f.provision, "create missing topics and check existing ones at start")
}

// start connects what every role needs: telemetry, topics, the listener.
// validate are the settings of the components the role runs: they are
// checked first, so a bad flag never reaches the brokers.
func (f *roleFlags) start(ctx context.Context, g *globals, service string, validate ...func() error) (*platform, error) {
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	errs := []error{f.kc.Validate(), f.checkHTTPAddr(), web.CheckTLS(f.httpTLS), web.CheckOrigins(f.cors)}
	if f.apiAuth {
		errs = append(errs, f.ac.Validate())
	}
	for _, v := range validate {
		errs = append(errs, v())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, usage(err)
	}
	p := &platform{log: log, kc: f.kc, httpTLS: f.httpTLS, cors: f.cors}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	if p.tel, err = telemetry.Setup(ctx, service); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.tel.Shutdown(sctx)
	})
	if f.apiAuth {
		// Before the listener and the brokers: an issuer that cannot be
		// reached ends the role at once.
		if p.auth, err = auth.New(ctx, f.ac, log.With("component", "auth")); err != nil {
			return nil, err
		}
		if f.ac.Insecure {
			log.Warn("THE API HAS NO AUTHENTICATION (--insecure): anyone who reaches " + f.httpAddr + " may post readings, read every patient and acknowledge alarms")
		}
	}
	if p.ln, err = listen(f.httpAddr); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, func() { p.ln.Close() })
	if f.provision {
		if p.adm, err = provision(ctx, &f.kc, p.tel, log); err != nil {
			return nil, err
		}
	} else {
		p.adm, err = adminOnly(ctx, &f.kc, p.tel)
		if err != nil {
			return nil, err
		}
	}
	p.closers = append(p.closers, p.adm.Close)
	// A role that lacks a grant it needs ends now, naming it, not at its
	// first write minutes later.
	if role := strings.TrimPrefix(service, "monitorme-"); slices.Contains(kafka.ACLRoles, role) {
		o := kafka.ACLOptions{ProcessGroup: f.prc.Group, SinkGroup: f.skc.Group, TransactionalID: f.prc.TransactionalID}
		// Grants made a moment ago reach each broker from the metadata
		// log a little later: a missing one is believed after 3 s.
		cctx, cancel := context.WithTimeout(ctx, startPing)
		defer cancel()
		_, err := backoff.Retry(cctx, func() (struct{}, error) {
			err := kafka.CheckACLs(cctx, p.adm, &f.kc, role, o)
			if err != nil && !errors.Is(err, kafka.ErrMissingACL) {
				return struct{}{}, backoff.Permanent(err)
			}
			return struct{}{}, err
		}, backoff.WithBackOff(backoff.NewConstantBackOff(250*time.Millisecond)), backoff.WithMaxElapsedTime(3*time.Second))
		if err != nil {
			return nil, err
		}
	}
	ok = true
	return p, nil
}

// runRole is the body of every single-role command: check the settings and
// connect, wire the role's components, say so, run until stopped.
func (f *roleFlags) runRole(cmd *cobra.Command, g *globals, service string, validate []func() error,
	wire func(context.Context, *platform) error, started func(*platform)) error {
	p, err := f.start(cmd.Context(), g, service, validate...)
	if err != nil {
		return err
	}
	defer p.close()
	if err := wire(cmd.Context(), p); err != nil {
		return err
	}
	started(p)
	return p.run(cmd.Context())
}

// withProducer makes the producer ingest and acknowledgements share.
func (p *platform) withProducer(f *roleFlags) error {
	if p.producer != nil {
		return nil
	}
	prod, err := producers.NewProducer(f.pc, p.kc, p.tel)
	if err != nil {
		return usage(err)
	}
	p.closers = append(p.closers, func() {
		if err := prod.Close(); err != nil {
			p.log.Error("producer", "err", err)
		}
	})
	p.producer = prod
	return nil
}

func (p *platform) withIngest(f *roleFlags) error {
	if err := p.withProducer(f); err != nil {
		return err
	}
	var err error
	p.ingest, err = producers.NewIngest(f.ic, p.producer, p.log.With("component", "ingest"), p.tel.MeterProvider)
	if err != nil {
		return usage(err)
	}
	// Load shedding watches the alert processors' group (the one dev
	// runs, or the process role's default) on the vitals topic.
	p.backlog = producers.NewBacklog(p.adm, f.prc.Group, p.kc.Topics.Vitals)
	p.ingest.ShedWith(p.backlog)
	return nil
}

func (p *platform) withProcessor(f *roleFlags) error {
	var err error
	p.proc, err = processors.New(f.prc, p.kc, p.log.With("component", "processor"), p.tel)
	p.groups = append(p.groups, f.prc.Group)
	return usage(err)
}

// admitSimulated admits the simulated patients to beds of the ward
// "demo", so that dev's station shows a ward: what a hospital's ADT
// interface does for real patients. A restart admits them again to the
// same beds, which changes nothing.
func (p *platform) admitSimulated(ctx context.Context) {
	if p.producer == nil {
		return
	}
	for i, id := range p.sim.PatientIDs() {
		pl := schemas.Placement{PatientID: id, Event: schemas.Admit, Ward: "demo", Bed: strconv.Itoa(i + 1), Name: "Sim " + id,
			By: "dev-simulator", Auth: "token", TS: time.Now().UTC()}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.producer.WritePlacement(wctx, pl)
		cancel()
		if err != nil {
			p.log.Warn("admitting the simulated patients", "err", err)
			return
		}
	}
}

// recordRules writes the rules-loaded event of the processor's rules to
// the acks topic: the audit trail of rule changes, which the history sink
// stores with acknowledgements and silences. Who loaded them is the
// role's identity to the brokers.
func (p *platform) recordRules(ctx context.Context, f *roleFlags) error {
	ev, err := f.prc.RulesLoaded()
	if err != nil {
		return err
	}
	ev.By, ev.Auth = p.kc.Security.Principal()
	if ev.By == "" {
		ev.By = "process"
	}
	ev.Host, _ = os.Hostname()
	ev.TS = time.Now().UTC()
	rec, err := schemas.RulesLoadedRecord(p.kc.Topics.Acks, &ev)
	if err != nil {
		return err
	}
	cl, err := p.kc.NewClient("rules-audit")
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("record the rules loaded on %s (audit trail): %w", p.kc.Topics.Acks, p.kc.Explain(err))
	}
	p.log.Info("rules loaded", "source", ev.Source, "sha256", ev.SHA256, "by", ev.By)
	return nil
}

func (p *platform) withLive(f *roleFlags) error {
	if err := p.withProducer(f); err != nil {
		return err
	}
	var err error
	p.live, err = api.NewLive(f.lc, p.kc, p.log.With("component", "live"), p.tel)
	p.apiOpts = []api.Option{api.WithRules(&f.prc.Clinical), api.WithAcks(p.producer)}
	if p.ch != nil {
		p.apiOpts = append(p.apiOpts, api.WithHistory(warehouse.History{DB: p.ch}))
	} else {
		p.apiOpts = append(p.apiOpts, api.WithRecords(topicRecords{p.kc}))
	}
	return usage(err)
}

// withClickHouse connects to ClickHouse if an address is configured:
// migrating first (dev), or refusing a database `monitorme migrate` has
// not brought to this binary's schema.
func (p *platform) withClickHouse(ctx context.Context, f *roleFlags, migrate bool) error {
	if !f.wc.Enabled() {
		return nil
	}
	if migrate {
		from, to, err := warehouse.Migrate(ctx, f.wc, f.schema, p.log.With("component", "migrate"))
		if err != nil {
			return err
		}
		p.log.Info("clickhouse schema", "from", from, "to", to)
	}
	conn, err := warehouse.Open(ctx, f.wc)
	if err != nil {
		return err
	}
	p.closers = append(p.closers, func() { conn.Close() })
	if !migrate {
		if err := warehouse.RequireSchema(ctx, conn); err != nil {
			return err
		}
	}
	p.ch = conn
	return nil
}

func (p *platform) withSink(f *roleFlags) error {
	var err error
	p.sink, err = sinkch.New(f.skc, p.kc, sinkch.Native{Conn: p.ch}, p.log.With("component", "sink"), p.tel)
	p.groups = append(p.groups, f.skc.Group)
	return usage(err)
}

// readyChecks are what /readyz runs. Ready means answering with the
// whole truth: the brokers and topics are there, the processor restored
// every partition it was given and caught up with its backlog (a reading
// posted now raises its alarm now), and the live view read what the
// topics held at start.
func (p *platform) readyChecks() []web.Check {
	checks := []web.Check{kafka.ReadyCheck(p.adm, p.kc.Topics.Names()...)}
	if p.proc != nil {
		checks = append(checks, p.proc.Ready)
	}
	if p.live != nil {
		checks = append(checks, p.live.Ready)
	}
	return checks
}

// sayReady prints to out, once every ready check passes, that the
// platform acts on readings, and how long that took; nothing if ctx ends
// first.
func (p *platform) sayReady(ctx context.Context, out io.Writer, started time.Time) {
	for {
		ok := true
		for _, c := range p.readyChecks() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := c(cctx)
			cancel()
			if err != nil {
				ok = false
				break
			}
		}
		if ok {
			fmt.Fprintf(out, "Ready after %v: every partition's state restored and its backlog applied, the live view current. Alarms are live.\n", time.Since(started).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run serves HTTP and runs the components until ctx ends.
func (p *platform) run(ctx context.Context) error {
	e := web.New(p.log.With("component", "http"), p.tel, p.readyChecks()...)
	// CORS first: a browser's preflight carries no token.
	e.Use(web.CORS(p.cors))
	if p.auth != nil {
		e.Use(p.auth.Middleware())
		p.auth.Register(e)
	}
	if len(p.groups) > 0 {
		if err := p.tel.Registry.Register(kafka.LagCollector(p.adm, p.groups...)); err != nil {
			return err
		}
	}
	var tasks []task
	if p.sim != nil {
		tasks = append(tasks, task{"simulator", func(ctx context.Context) error {
			p.admitSimulated(ctx)
			return p.sim.Run(ctx)
		}})
	}
	if p.ingest != nil {
		p.ingest.Register(e)
		tasks = append(tasks, task{"ingest backlog", p.backlog.Run})
	}
	if p.live != nil {
		api.NewServer(p.live, p.apiOpts...).Register(e)
	}
	tasks = append(tasks, task{"http", func(ctx context.Context) error {
		t := web.DefaultTimeouts()
		t.TLS, t.Log = p.httpTLS, p.log.With("component", "http")
		return web.ServeWith(ctx, e, p.ln, t)
	}})
	if p.proc != nil {
		tasks = append(tasks, task{"processor", p.proc.Run})
	}
	if p.live != nil {
		tasks = append(tasks, task{"live view", p.live.Run})
	}
	if p.sink != nil {
		tasks = append(tasks, task{"history sink", p.sink.Run})
	}
	return runAll(ctx, p.log, tasks...)
}
