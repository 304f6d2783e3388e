// Package version says which build of monitorme is running: its version,
// the commit it was built from and the Go toolchain, for `monitorme
// version`, `--version`, the start-up banner and the build_info metric a
// platform team alerts on during a rollout.
package version

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Version can be set at build time:
//
//	go build -ldflags "-X github.com/monitorme/monitorme/internal/version.Version=v1.2.3"
//
// Otherwise it is the module version the Go toolchain stamped from the VCS
// (a pseudo-version with +dirty for a modified tree), or "devel".
var Version = ""

// Info is a build's identity.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"go_version"`
}

var info = sync.OnceValue(func() Info {
	i := Info{Version: Version, Revision: "unknown", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if i.Version == "" {
		i.Version = "devel"
		if ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
	}
	if ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				i.Revision = s.Value
			}
		}
	}
	return i
})

// Get returns the running build's identity.
func Get() Info { return info() }

// String is "<version> (commit <revision>, <go version>)".
func (i Info) String() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return i.Version + " (commit " + rev + ", " + i.GoVersion + ")"
}
