package roles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/monitorme/monitorme/internal/kafka"
	"github.com/monitorme/monitorme/internal/telemetry"
)

// aclsCmd prints (or grants) the ACLs a role needs: the least privilege
// of docs/security.md, from the same table the tests grant.
func aclsCmd(g *globals) *cobra.Command {
	kc := kafka.DefaultConfig()
	o := kafka.DefaultACLOptions()
	var role, principal, format string
	apply := false
	cmd := &cobra.Command{
		Use:   "acls",
		Short: "Print the Kafka ACLs a role needs (kafka-acls or rpk commands), or grant them",
		Long: `acls prints the ACLs one role needs and nothing more: the topics it reads and
writes, its consumer group, the processor's transactional-id prefix and
idempotent writes. --format kafka-acls and rpk print commands; table a
readable list. --apply grants them on the cluster of --brokers, as the user
the Kafka flags name (which must be allowed to alter ACLs).

  monitorme acls --role process --principal User:process --format rpk
  monitorme acls --role ingest --apply --brokers ... --user admin --sasl-mechanism SCRAM-SHA-256 --sasl-password-file admin.pw`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if principal == "" {
				principal = "User:" + role
			}
			var errs []error
			if !strings.HasPrefix(principal, "User:") || len(principal) == len("User:") {
				errs = append(errs, fmt.Errorf("principal: %q, want User:<name>", principal))
			}
			if format != "kafka-acls" && format != "rpk" && format != "table" {
				errs = append(errs, fmt.Errorf("format: %q, want kafka-acls, rpk or table", format))
			}
			if apply {
				errs = append(errs, kc.Validate())
			}
			acls, err := kc.RoleACLs(role, o)
			errs = append(errs, err)
			if err := errors.Join(errs...); err != nil {
				return usage(err)
			}
			if apply {
				log, err := g.logger()
				if err != nil {
					return err
				}
				if err := grant(cmd.Context(), &kc, principal, acls); err != nil {
					return err
				}
				log.Info("acls granted", "role", role, "principal", principal, "acls", len(acls))
				return nil
			}
			printACLs(cmd.OutOrStdout(), principal, format, acls)
			return nil
		},
	}
	kc.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&role, "role", role, "role: "+strings.Join(kafka.ACLRoles, ", "))
	cmd.Flags().StringVar(&principal, "principal", principal, "Kafka principal of the role (default User:<role>)")
	cmd.Flags().StringVar(&format, "format", "kafka-acls", "kafka-acls, rpk or table")
	cmd.Flags().BoolVar(&apply, "apply", apply, "grant the ACLs on the cluster instead of printing them")
	cmd.Flags().StringVar(&o.ProcessGroup, "group", o.ProcessGroup, "consumer group of the alert processors")
	cmd.Flags().StringVar(&o.SinkGroup, "sink-group", o.SinkGroup, "consumer group of the history sink")
	cmd.Flags().StringVar(&o.TransactionalID, "transactional-id", o.TransactionalID, "the processor's --transactional-id, if set")
	return cmd
}

func printACLs(w io.Writer, principal, format string, acls []kafka.ACL) {
	switch format {
	case "table":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RESOURCE\tNAME\tOPERATIONS\tWHY")
		for _, a := range acls {
			name := a.Name
			if a.Prefixed {
				name += "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Resource, name, strings.Join(a.Ops, ", "), a.Why)
		}
		tw.Flush()
	case "rpk":
		for _, a := range acls {
			fmt.Fprintln(w, a.RpkCommand(principal))
		}
	default:
		for _, a := range acls {
			fmt.Fprintln(w, a.KafkaACLsCommand(principal))
		}
	}
}

// grant creates the ACLs and says which failed.
func grant(ctx context.Context, kc *kafka.Config, principal string, acls []kafka.ACL) error {
	cl, err := kc.NewClient("acls", telemetry.Nop().KafkaHooks(nil))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	for _, a := range acls {
		b, err := a.Builder(principal)
		if err != nil {
			return err
		}
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			return fmt.Errorf("create ACLs: %w", kc.Explain(err))
		}
		for _, r := range res {
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("%s %s %s: %w", r.Type, r.Name, r.Operation, kc.Explain(r.Err)))
			}
		}
	}
	return errors.Join(errs...)
}
