// Command monitorme runs every role of the MonitorMe platform; see
// `monitorme --help`.
package main

import (
	"os"

	"github.com/monitorme/monitorme/roles"
)

func main() {
	os.Exit(roles.Main(os.Args[1:], os.Stdout, os.Stderr))
}
