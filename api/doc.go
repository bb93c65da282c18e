// Package api holds the wire types of Tally's HTTP API v1: requests,
// responses and error codes. The server (transport) and the Go SDK (client)
// both use it, so a field renamed here is renamed on both sides at once.
//
// Times are time.Time, which encoding/json writes as RFC 3339 with up to
// nine fraction digits, trailing zeros trimmed (a whole second has no
// fraction); servers always send UTC. testdata/wire pins the JSON of every
// answer (wire_test.go). Errors travel as
// {"error": {"code": "...", "message": "..."}} and decode to *Error, whose
// errors.Is compares codes.
package api
