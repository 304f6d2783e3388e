// Package api is the query side of MonitorMe: the echo routes clinicians'
// tools call for patients, their latest vitals, recent alerts and a live
// Server-Sent Events stream, plus the OpenAPI document of the whole HTTP
// surface.
//
// Live data comes from [Live], a read_committed view of the vitals and
// alerts topics held in bounded memory: it never sees an alert that a
// processor later aborted. History (ranges, downsampling) is ClickHouse's
// job and answers 501 until a ClickHouse sink exists.
package api
