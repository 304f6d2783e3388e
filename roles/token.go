package roles

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/monitorme/monitorme/internal/auth"
)

// tokenCmd manages the static token file (--auth-token-file), for sites
// without an identity provider.
func tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make API tokens for a static token file (sites without an identity provider)",
		Args:  noArgs,
	}
	var e auth.TokenEntry
	file := ""
	create := &cobra.Command{
		Use:   "create",
		Short: "Make a token, print it once on stdout, and add its hash to the token file",
		Long: `create makes a random token (256 bits), prints it on stdout once, and appends
its SHA-256 hash with the subject and roles to --file (created 0600 if
missing). The file never holds a token; servers given --auth-token-file read
it again when it changes. Revoke a token by deleting its entry.

  monitorme token create --file tokens.yaml --subject station-icu-1 --role clinician
  monitorme token create --file tokens.yaml --subject gw-icu --role device --device mon-1 --device mon-2`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			if file == "" {
				errs = append(errs, errors.New("file: give the token file to add to (--file tokens.yaml)"))
			}
			for _, r := range e.Roles {
				if _, err := auth.ParseRole(r); err != nil {
					errs = append(errs, err)
				}
			}
			if err := errors.Join(errs...); err != nil {
				return usage(err)
			}
			tok := auth.NewToken()
			e.SHA256 = auth.Hash(tok)
			if err := auth.AppendToken(file, e); err != nil {
				return usage(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			fmt.Fprintf(cmd.ErrOrStderr(), "added %s (%v) to %s; the token above is shown once, keep it in a secret store\n", e.Subject, e.Roles, file)
			return nil
		},
	}
	create.Flags().StringVar(&file, "file", file, "token file to add the token's hash to")
	create.Flags().StringVar(&e.Subject, "subject", e.Subject, "who the token is: a user, station or gateway id, recorded on acknowledgements")
	create.Flags().StringSliceVar(&e.Roles, "role", e.Roles, "role of the token: device, clinician, analyst or admin (repeat for more)")
	create.Flags().StringSliceVar(&e.Devices, "device", e.Devices, "device id a device token may post readings of (repeat; absent: any)")
	cmd.AddCommand(create)
	return cmd
}
