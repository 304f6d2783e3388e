package roles

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// CLIReference writes docs/cli.md: every command of monitorme, from the
// commands themselves (their usage, help text and flags with defaults),
// so that the reference cannot drift from the binary. A test holds the
// checked-in file to it; `make docs` writes it again.
func CLIReference(w io.Writer) error {
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultVersionFlag() // cobra adds --version when it runs
	var b bytes.Buffer
	b.WriteString("# monitorme command reference\n\n")
	b.WriteString("Generated from the commands themselves by `make docs` (`roles.CLIReference`);\n")
	b.WriteString("CI fails when this file differs from what the binary says. Every command\n")
	b.WriteString("exits 0 on success, 2 on a usage error (bad flag or value, with a message\n")
	b.WriteString("naming it), 1 on any other failure.\n\n")
	var walk func(c *cobra.Command)
	var cmds []*cobra.Command
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		cmds = append(cmds, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, c := range cmds[1:] {
		fmt.Fprintf(&b, "- [`%s`](#%s): %s\n", c.CommandPath(), anchor(c.CommandPath()), c.Short)
	}
	b.WriteString("\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "## %s\n\n", c.CommandPath())
		if c.Long != "" {
			b.WriteString(strings.TrimSpace(c.Long) + "\n\n")
		} else if c.Short != "" {
			b.WriteString(c.Short + ".\n\n")
		}
		if c.Runnable() {
			fmt.Fprintf(&b, "```\n%s\n```\n\n", c.UseLine())
		}
		if c.Example != "" {
			fmt.Fprintf(&b, "Examples:\n\n```\n%s\n```\n\n", strings.TrimRight(c.Example, "\n"))
		}
		if fs := c.NonInheritedFlags(); fs.HasAvailableFlags() {
			b.WriteString("Flags:\n\n```\n" + flagUsages(fs) + "```\n\n")
		}
		if fs := c.InheritedFlags(); fs.HasAvailableFlags() {
			b.WriteString("Global flags:\n\n```\n" + flagUsages(fs) + "```\n\n")
		}
	}
	_, err := w.Write(bytes.TrimRight(b.Bytes(), "\n"))
	if err == nil {
		_, err = io.WriteString(w, "\n")
	}
	return err
}

func flagUsages(fs *pflag.FlagSet) string {
	fs.SortFlags = true
	return fs.FlagUsagesWrapped(0)
}

// anchor is GitHub's heading anchor of "## text".
func anchor(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), " ", "-")
}
