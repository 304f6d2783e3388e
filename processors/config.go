package processors

// The processor's configuration: its flags, its defaults, what it refuses,
// and the rules file it loads.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/monitorme/monitorme/clinical"
	"github.com/monitorme/monitorme/schemas"
)

// Config configures a processor.
type Config struct {
	Group string
	// TransactionalID "" gives every process incarnation its own id. The
	// group generation fences a zombie (KIP-447), so a stable id is not
	// needed for correctness; set one (e.g. a StatefulSet pod name) only
	// to have a restart abort its predecessor's open transaction at once
	// instead of after TransactionTimeout.
	TransactionalID string
	// TransactionTimeout is how long the broker lets a transaction stay
	// open. An abandoned one (a crashed processor) blocks read_committed
	// readers of its partitions until it expires, so keep it short.
	TransactionTimeout time.Duration
	// FetchMaxWait bounds an empty fetch. kgo's 5 s default was measured
	// to stall partition takeovers on kfake for seconds.
	FetchMaxWait   time.Duration
	SessionTimeout time.Duration
	// MaxPollRecords bounds the records of one transaction. A
	// transaction's fixed cost (flush, offset commit, the commit markers,
	// one changelog snapshot per patient it touched) is amortized over
	// them: with 30,000 the clinical benchmark ran at 0.71-0.77x a plain
	// copy, with 10,000 at 0.62-0.69x (docs/benchmarks.md). 30,000 is
	// about 50 ms of work at full speed, well inside the one-second alert
	// budget, and a live processor's polls are far smaller.
	MaxPollRecords int
	// CommitInterval is how long a transaction gathers records after the
	// first arrives, up to MaxPollRecords: a poll returns as soon as
	// anything is fetched, so at a low rate each transaction carried a
	// handful of records, and its fixed cost (AddPartitions, EndTxn, a
	// marker on every partition it wrote, three times over with
	// replication) dominated the brokers' work. 0 commits each poll.
	// A transaction that raised an alert event ends at once, so the
	// interval delays only transactions without one (the commit of state
	// and offsets), and nothing once a poll fills MaxPollRecords
	// (docs/benchmarks.md).
	CommitInterval time.Duration
	// Rules picks the handler: "clinical" (the default) is the stateful
	// engine (persistence delays, hysteresis, sleep-aware limits, NEWS2,
	// signal lost, escalation) whose state lives in the state changelog;
	// "threshold" raises an alert for every reading beyond a limit, with
	// no state (the e2e suite counts alerts against readings with it).
	Rules string
	// TickInterval is how often timers are checked while no record
	// arrives: the delay, beyond their deadline, of a signal-lost or
	// escalation event on a quiet partition.
	TickInterval time.Duration
	// RulesFile is the YAML file of per-ward and per-patient rules of the
	// clinical engine ("" for the built-in defaults).
	RulesFile string
	// Clinical is the clinical engine's configuration: the built-in
	// defaults, or RulesFile once LoadRules read it. It is no flag.
	Clinical clinical.Config
	// rulesSum is the SHA-256 of the bytes LoadRules parsed: the audit
	// trail's hash is of the rules in force, read once (before, the file
	// was read again to hash it, and could have changed in between).
	rulesSum [32]byte
	// PatientExpiry and PatientExpiryUnestablished set
	// Clinical.ExpireIdle and Clinical.ExpireUnestablished: the state of
	// every patient is bounded by time, however many ids arrive.
	PatientExpiry, PatientExpiryUnestablished time.Duration
}

// DefaultCommitInterval is CommitInterval's default.
const DefaultCommitInterval = 100 * time.Millisecond

// DefaultConfig returns the defaults the flag help names.
func DefaultConfig() Config {
	return Config{
		Group:              "alerting",
		TransactionTimeout: 10 * time.Second,
		FetchMaxWait:       500 * time.Millisecond,
		SessionTimeout:     10 * time.Second,
		MaxPollRecords:     30_000,
		CommitInterval:     DefaultCommitInterval,
		Rules:              "clinical",
		TickInterval:       500 * time.Millisecond,
		Clinical:           clinical.DefaultConfig(),

		PatientExpiry:              24 * time.Hour,
		PatientExpiryUnestablished: 10 * time.Minute,
	}
}

// LoadRules reads RulesFile into Clinical (the built-in defaults when
// there is none). Roles call it with the other settings checks, so a bad
// file stops them before they touch a broker, naming the file's line and
// the reason.
func (c *Config) LoadRules() error {
	if c.RulesFile == "" {
		c.Clinical = clinical.DefaultConfig()
		return nil
	}
	cfg, raw, err := ReadRulesFile(c.RulesFile)
	if err != nil {
		return err
	}
	c.Clinical, c.rulesSum = cfg, sha256.Sum256(raw)
	return nil
}

// RulesLoaded describes the rules LoadRules read, for the audit trail
// (the caller fills in who and where): the file and the SHA-256 of its
// bytes, or "built-in" and the hash of the defaults as JSON.
func (c *Config) RulesLoaded() (schemas.RulesLoaded, error) {
	ev := schemas.RulesLoaded{Source: "built-in", Rules: c.Rules}
	sum := c.rulesSum
	if c.RulesFile != "" {
		ev.Source = c.RulesFile
		if sum == ([32]byte{}) {
			return ev, errors.New("rules-loaded event before LoadRules read " + c.RulesFile)
		}
	} else {
		b, err := json.Marshal(c.Clinical)
		if err != nil {
			return ev, err
		}
		sum = sha256.Sum256(b)
	}
	ev.SHA256 = hex.EncodeToString(sum[:])
	return ev, nil
}

// RegisterFlags binds c to flags.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Group, "group", c.Group, "consumer group of the alert processors")
	fs.StringVar(&c.TransactionalID, "transactional-id", c.TransactionalID, `transactional id ("": unique per process start)`)
	fs.DurationVar(&c.TransactionTimeout, "transaction-timeout", c.TransactionTimeout, "broker-side limit of one transaction; an abandoned one blocks readers this long")
	fs.DurationVar(&c.FetchMaxWait, "fetch-max-wait", c.FetchMaxWait, "longest wait of an empty fetch")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", c.SessionTimeout, "group session timeout: how long a dead member holds its partitions")
	fs.IntVar(&c.MaxPollRecords, "max-poll-records", c.MaxPollRecords, "records per transaction at most")
	fs.DurationVar(&c.CommitInterval, "commit-interval", c.CommitInterval, "how long a transaction gathers records after the first arrives (up to max-poll-records; an alert ends it at once); 0 commits every poll")
	fs.StringVar(&c.Rules, "rules", c.Rules, `alert rules: "clinical" (stateful: persistence, hysteresis, sleep-aware limits, NEWS2, signal lost, escalation) or "threshold" (an alert per reading beyond a limit)`)
	fs.DurationVar(&c.TickInterval, "tick", c.TickInterval, "how often timers (signal lost, escalation) are checked while no record arrives")
	fs.DurationVar(&c.PatientExpiry, "patient-expiry", c.PatientExpiry, "forget a patient who sent nothing this long: open alerts are resolved, the state is deleted (tombstone in the changelog)")
	fs.DurationVar(&c.PatientExpiryUnestablished, "patient-expiry-unestablished", c.PatientExpiryUnestablished, "forget sooner a patient whose devices never kept a cadence for a minute and who has no open alert (invented or mistyped ids)")
	RulesFileFlag(fs, &c.RulesFile, "the rules the engine applies")
}

// Validate refuses settings the processor cannot honor.
func (c *Config) Validate() error {
	switch {
	case c.Group == "":
		return errors.New("group: must not be empty")
	case c.TransactionTimeout < time.Second:
		return fmt.Errorf("transaction-timeout: %v, want at least 1s", c.TransactionTimeout)
	case c.FetchMaxWait <= 0 || c.FetchMaxWait >= c.TransactionTimeout:
		return fmt.Errorf("fetch-max-wait: %v, want more than 0 and less than transaction-timeout", c.FetchMaxWait)
	case c.SessionTimeout < 100*time.Millisecond:
		return fmt.Errorf("session-timeout: %v, want at least 100ms", c.SessionTimeout)
	case c.MaxPollRecords < 1:
		return fmt.Errorf("max-poll-records: %d, want at least 1", c.MaxPollRecords)
	case c.CommitInterval < 0 || c.CommitInterval > time.Second || c.CommitInterval >= c.TransactionTimeout/2:
		return fmt.Errorf("commit-interval: %v, want 0 to 1s and under half the transaction-timeout", c.CommitInterval)
	case c.Rules != "threshold" && c.Rules != "clinical":
		return fmt.Errorf("rules: %q, want clinical or threshold", c.Rules)
	case c.TickInterval < 10*time.Millisecond || c.TickInterval > 10*time.Second:
		return fmt.Errorf("tick: %v, want 10ms to 10s", c.TickInterval)
	case c.PatientExpiry < time.Hour:
		return fmt.Errorf("patient-expiry: %v, want at least 1h", c.PatientExpiry)
	case c.PatientExpiryUnestablished < time.Minute || c.PatientExpiryUnestablished > c.PatientExpiry:
		return fmt.Errorf("patient-expiry-unestablished: %v, want 1m up to patient-expiry", c.PatientExpiryUnestablished)
	case c.RulesFile != "" && c.Rules != "clinical":
		return fmt.Errorf("rules-file: only the clinical rules read it (rules is %q)", c.Rules)
	}
	return nil
}
