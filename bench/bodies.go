package bench

import (
	"encoding/json"
	"strconv"
)

// jq is s as a JSON string literal.
func jq(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// checkoutTemplate builds checkout bodies that differ only in their
// request id, appending into a worker's buffer: the fixed head is encoded
// once, the id is prefix-counter.
type checkoutTemplate struct {
	head []byte // everything up to the request id's first character
	id   string // the request id's fixed prefix
}

func newCheckoutTemplate(key, machine, process, idPrefix string, ttlSeconds int64) checkoutTemplate {
	head := `{"license_key":` + jq(key) + `,"feature":"` + benchFeature + `","holder":{"machine":` + jq(machine) +
		`,"process":` + jq(process) + `}`
	if ttlSeconds > 0 {
		head += `,"ttl_seconds":` + strconv.FormatInt(ttlSeconds, 10)
	}
	return checkoutTemplate{head: []byte(head + `,"request_id":"`), id: idPrefix}
}

// build appends the body with request id prefix-n to buf.
func (t checkoutTemplate) build(buf []byte, n int64) []byte {
	buf = append(buf, t.head...)
	buf = append(buf, t.id...)
	buf = append(buf, '-')
	buf = strconv.AppendInt(buf, n, 10)
	return append(buf, `"}`...)
}

// keyBody is the body of heartbeat and checkin.
func keyBody(key string) []byte { return []byte(`{"license_key":` + jq(key) + `}`) }
