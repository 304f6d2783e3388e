// Package clinical is the clinical alerting engine, pure: a patient's
// state and one input (a reading, an acknowledgement, a silence, a
// placement, or the time) in, the state changed and the alert events out.
// It has no Kafka, no I/O and no clock of its own (every time it uses is
// an argument), so its tests need no broker, and the processor, a replay
// (inspect) and the API (its rules and NEWS2) run the same code.
//
// Files by responsibility: engine.go, the [Engine] and its dispatch of a
// reading, acknowledgement, silence or placement; stream.go and queue.go,
// the [Stream] that applies a partition's inputs in log order and fires
// each patient's timers by stream time; condition.go, the condition rules
// (persistence, hysteresis, critical limits, sleep); news2.go and
// news2_alert.go, the NEWS2 chart and its alert; satseconds.go, the
// SatSeconds integral; timers.go, signal lost, escalation, expiry and the
// waits that end on a quiet partition; copies.go, the reading identities
// that make a copy change nothing; state.go and statejson.go, the
// per-patient state and its changelog encoding; patients.go, states in
// memory; config.go, the rules in force ([Config], [RuleSet]);
// rulesfile.go and rulesdoc.go, the rules file's YAML; thresholds.go, the
// stateless threshold rules.
package clinical
