// Package roles is the monitorme command line: one cobra command per role
// (dev, ingest, process, api, sink, migrate, simulate, topics, bench), each
// reading its flags and MONITORME_* environment variables, building its
// components with their own constructors, printing where it listens, and
// running them together until SIGINT or SIGTERM.
//
// It is the roof of the house: the only package, with its bench, that
// imports every component (producers, processors, sinks, api). It is not
// under internal/, which is the ground floor the components stand on
// (Kafka settings, telemetry, the HTTP server, the embedded broker), so no
// arrow runs back up the tree; and it is not cmd/monitorme, which stays a
// few lines so the commands can be run and tested as a library (Run).
// The tree reads top to bottom: cmd/monitorme, roles, the components in
// data-flow order, internal/, schemas/.
package roles
