package kafka

// The ACLs each role needs, and nothing more: one table that
// `monitorme acls` prints as kafka-acls and rpk commands (or applies),
// docs/security.md lists, and the tests grant before running each role
// under its own user on a cluster that denies everything else.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACL is one grant: operations on a resource.
type ACL struct {
	// Resource is topic, group, transactional-id or cluster.
	Resource string
	// Name is the resource's name ("kafka-cluster" for the cluster).
	Name string
	// Prefixed matches every name starting with Name.
	Prefixed bool
	// Ops are Kafka operation names: Read, Write, Describe,
	// IdempotentWrite, Create, DescribeConfigs.
	Ops []string
	// Why says what the role does with it.
	Why string
}

// ACLRoles are the roles that talk to Kafka, in the order the docs list
// them.
var ACLRoles = []string{"ingest", "process", "api", "sink", "topics"}

// ACLOptions are the role settings that name resources: the consumer
// groups and the processor's transactional id.
type ACLOptions struct {
	// ProcessGroup and SinkGroup are --group and --sink-group.
	ProcessGroup, SinkGroup string
	// TransactionalID is the processor's --transactional-id; empty: each
	// start makes its own, under the prefix <client-id>-<group>-.
	TransactionalID string
}

// DefaultACLOptions are the roles' defaults.
func DefaultACLOptions() ACLOptions {
	return ACLOptions{ProcessGroup: "alerting", SinkGroup: "history-sink"}
}

// RoleACLs returns the grants role needs on the cluster c names. Every
// role may describe every MonitorMe topic (metadata only: /readyz checks
// they exist); the other grants follow what the role reads and writes.
func (c *Config) RoleACLs(role string, o ACLOptions) ([]ACL, error) {
	acls, err := c.roleACLs(role, o)
	return mergeDescribe(acls), err
}

// mergeDescribe folds the Describe of a topic into the topic's other
// grant, if any: one line per topic.
func mergeDescribe(acls []ACL) []ACL {
	var out []ACL
	for _, a := range acls {
		i := slices.IndexFunc(out, func(b ACL) bool { return b.Resource == a.Resource && b.Name == a.Name && b.Prefixed == a.Prefixed })
		if i < 0 {
			out = append(out, a)
			continue
		}
		for _, op := range a.Ops {
			if !slices.Contains(out[i].Ops, op) {
				out[i].Ops = append(out[i].Ops, op)
			}
		}
	}
	return out
}

func (c *Config) roleACLs(role string, o ACLOptions) ([]ACL, error) {
	t := c.Topics
	describe := ACL{Resource: "topic", Name: "", Ops: []string{"Describe"}, Why: "metadata of every MonitorMe topic (/readyz checks they exist)"}
	all := func() []ACL {
		var out []ACL
		for _, name := range t.Names() {
			d := describe
			d.Name = name
			out = append(out, d)
		}
		return out
	}
	topic := func(name, why string, ops ...string) ACL {
		return ACL{Resource: "topic", Name: name, Ops: ops, Why: why}
	}
	idem := ACL{Resource: "cluster", Name: "kafka-cluster", Ops: []string{"IdempotentWrite"}, Why: "idempotent producer (acks=all, no duplicates on retry)"}
	switch role {
	case "ingest":
		return append([]ACL{topic(t.Vitals, "produce readings", "Write"),
			{Resource: "group", Name: o.ProcessGroup, Ops: []string{"Describe"}, Why: "load shedding: how far the alert processors are behind (--ingest-max-backlog)"},
			idem}, all()...), nil
	case "process":
		txn := ACL{Resource: "transactional-id", Name: c.ClientID + "-" + o.ProcessGroup + "-", Prefixed: true, Ops: []string{"Write", "Describe"},
			Why: "exactly-once transactions (each start takes an id under this prefix)"}
		if o.TransactionalID != "" {
			txn.Name, txn.Prefixed, txn.Why = o.TransactionalID, false, "exactly-once transactions (--transactional-id)"
		}
		return append([]ACL{
			topic(t.Vitals, "consume readings", "Read"),
			topic(t.Acks, "consume acknowledgements and silences; record the rules loaded (audit)", "Read", "Write"),
			topic(t.State, "changelog of per-patient state: write, and restore on assignment", "Read", "Write"),
			topic(t.Placements, "follow a transfer to the new ward's rules", "Read"),
			topic(t.Alerts, "produce alert events", "Write"),
			topic(t.VitalsDLQ, "dead-letter unreadable readings", "Write"),
			topic(t.AcksDLQ, "dead-letter unreadable acknowledgements", "Write"),
			{Resource: "group", Name: o.ProcessGroup, Ops: []string{"Read", "Describe"}, Why: "consumer group, offsets committed in the transaction; lag metric"},
			txn, idem,
		}, all()...), nil
	case "api":
		return append([]ACL{
			topic(t.Vitals, "live view: latest vitals", "Read"),
			topic(t.Alerts, "live view: alerts", "Read"),
			topic(t.Acks, "live view: silences; write acknowledgements and silences", "Read", "Write"),
			topic(t.Placements, "live view: wards and beds; write admissions, transfers and discharges", "Read", "Write"),
			idem,
		}, all()...), nil
	case "sink":
		return append([]ACL{
			topic(t.Vitals, "history of readings", "Read"),
			topic(t.Alerts, "history of alert events", "Read"),
			topic(t.Acks, "audit trail", "Read"),
			topic(t.VitalsDLQ, "dead-letter rows ClickHouse refuses", "Write"),
			topic(t.AlertsDLQ, "dead-letter rows ClickHouse refuses", "Write"),
			topic(t.AcksDLQ, "dead-letter rows ClickHouse refuses", "Write"),
			{Resource: "group", Name: o.SinkGroup, Ops: []string{"Read", "Describe"}, Why: "consumer group; lag metric"},
			idem,
		}, all()...), nil
	case "topics":
		var out []ACL
		for _, name := range t.Names() {
			out = append(out, ACL{Resource: "topic", Name: name, Ops: []string{"Create", "Describe", "DescribeConfigs"}, Why: "create the topic if missing, check its settings"})
		}
		return append(out, ACL{Resource: "cluster", Name: "kafka-cluster", Ops: []string{"Describe"}, Why: "count the live brokers (replication factor)"}), nil
	}
	return nil, fmt.Errorf("role %q: want one of %s", role, strings.Join(ACLRoles, ", "))
}

// KafkaACLsCommand is the kafka-acls command that grants a, for
// principal (User:ingest).
func (a ACL) KafkaACLsCommand(principal string) string {
	var b strings.Builder
	b.WriteString("kafka-acls.sh --bootstrap-server $BROKERS --command-config admin.properties --add --allow-principal " + principal)
	for _, op := range a.Ops {
		b.WriteString(" --operation " + op)
	}
	switch a.Resource {
	case "cluster":
		b.WriteString(" --cluster")
	case "transactional-id":
		b.WriteString(" --transactional-id " + a.Name)
	default:
		b.WriteString(" --" + a.Resource + " " + a.Name)
	}
	if a.Prefixed {
		b.WriteString(" --resource-pattern-type prefixed")
	}
	return b.String()
}

// RpkCommand is the rpk command that grants a.
func (a ACL) RpkCommand(principal string) string {
	var b strings.Builder
	b.WriteString("rpk security acl create --allow-principal " + principal)
	ops := make([]string, len(a.Ops))
	for i, op := range a.Ops {
		ops[i] = strings.ToLower(snake(op))
	}
	b.WriteString(" --operation " + strings.Join(ops, ","))
	switch a.Resource {
	case "cluster":
		b.WriteString(" --cluster")
	default:
		b.WriteString(" --" + a.Resource + " " + a.Name)
	}
	if a.Prefixed {
		b.WriteString(" --resource-pattern-type prefixed")
	}
	return b.String()
}

// snake turns IdempotentWrite into Idempotent_Write, as rpk names it.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Builder returns the kadm grant of a for principal.
func (a ACL) Builder(principal string) (*kadm.ACLBuilder, error) {
	b := kadm.NewACLs().Allow(principal).AllowHosts()
	var ops []kadm.ACLOperation
	for _, op := range a.Ops {
		o, err := kmsg.ParseACLOperation(strings.ToLower(snake(op)))
		if err != nil {
			return nil, fmt.Errorf("operation %s: %w", op, err)
		}
		ops = append(ops, o)
	}
	b = b.Operations(ops...)
	switch a.Resource {
	case "topic":
		b = b.Topics(a.Name)
	case "group":
		b = b.Groups(a.Name)
	case "transactional-id":
		b = b.TransactionalIDs(a.Name)
	case "cluster":
		b = b.Clusters()
	default:
		return nil, fmt.Errorf("resource %q", a.Resource)
	}
	if a.Prefixed {
		b = b.ResourcePatternType(kadm.ACLPatternPrefixed)
	} else {
		b = b.ResourcePatternType(kadm.ACLPatternLiteral)
	}
	return b, nil
}

// ErrMissingACL is CheckACLs' error: a grant the role needs is missing.
var ErrMissingACL = errors.New("missing ACLs")

// CheckACLs asks the brokers (KIP-430: the operations a client may
// perform, in the metadata of each topic) whether this client holds the
// topic grants role needs, and names the first ones missing. A broker
// that does not say (no authorizer, or too old) passes: the first request
// then names a missing grant instead. Groups and transactional ids are
// not listed by the brokers this way; a missing one ends the role at its
// first join or transaction, named the same way by Explain.
func CheckACLs(ctx context.Context, adm *kadm.Client, c *Config, role string, o ACLOptions) error {
	need, err := c.RoleACLs(role, o)
	if err != nil {
		return err
	}
	user, _ := c.Security.Principal()
	td, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), c.Topics.Names()...)
	if errors.Is(err, kerr.TopicAuthorizationFailed) {
		// The whole request was refused: not even Describe on one topic.
		return fmt.Errorf("%w: role %s (monitorme acls --role %s prints them): TOPIC_AUTHORIZATION_FAILED: User:%s may not describe the topics %s: %w",
			ErrMissingACL, role, role, user, strings.Join(c.Topics.Names(), ", "), err)
	}
	if err != nil {
		return c.Explain(err)
	}
	var errs []error
	for _, a := range need {
		if a.Resource != "topic" {
			continue
		}
		d, ok := td[a.Name]
		switch {
		case !ok:
			continue // missing topics are /readyz's to report
		case d.Err != nil:
			errs = append(errs, fmt.Errorf("topic %s: %w", a.Name, c.Explain(d.Err)))
			continue
		case len(d.AuthorizedOperations) == 0:
			continue
		}
		var lacks []string
		for _, op := range a.Ops {
			want, _ := kmsg.ParseACLOperation(strings.ToLower(snake(op)))
			if !slices.Contains(d.AuthorizedOperations, want) && !slices.Contains(d.AuthorizedOperations, kmsg.ACLOperationAll) {
				lacks = append(lacks, op)
			}
		}
		if len(lacks) > 0 {
			errs = append(errs, fmt.Errorf("TOPIC_AUTHORIZATION_FAILED: User:%s lacks %s on topic %s (%s)", user, strings.Join(lacks, ", "), a.Name, a.Why))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: role %s (monitorme acls --role %s prints them): %w", ErrMissingACL, role, role, errors.Join(errs...))
	}
	return nil
}
