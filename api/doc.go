// Package api is the query side of MonitorMe: the echo routes clinicians'
// tools call for patients, their latest vitals, recent alerts, a live
// Server-Sent Events stream, acknowledgements, alarm silences, the rules in
// force, the patient's current NEWS2 and the alarm burden, plus the
// OpenAPI document of the whole HTTP surface.
//
// Live data comes from [Live], a read_committed view of the vitals, alerts
// and acknowledgements topics (for silences) held in bounded memory: it
// never sees an alert that a processor aborted. History (ranges, downsampling) comes from ClickHouse,
// which the sink fills ([History]); without one those routes answer 501.
//
// It reads records through the schemas codec and takes what it needs of
// other roles as small interfaces ([AckWriter], [History]), so it imports
// no processor or producer; the rules it shows and scores NEWS2 by are
// package clinical's, which has no Kafka in it (rules.go).
package api
