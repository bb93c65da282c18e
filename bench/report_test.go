package bench

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/api"
)

// sampleReport is a report with known samples: 90 checkouts of 2 ms, 9 of
// 30 ms, one of 3 s; 5 no_seats_available and 2 no_leader.
func sampleReport() *Report {
	r := newReport("checkout-storm", "test cluster")
	r.param("clients", 4)
	co := NewOp("checkout")
	for i := 0; i < 100; i++ {
		d := 2 * time.Millisecond
		switch {
		case i == 99:
			d = 3 * time.Second
		case i >= 90:
			d = 30 * time.Millisecond
		}
		co.hist.Record(d)
		co.ok.Add(1)
	}
	for range 5 {
		co.Fail(api.CodeNoSeatsAvailable)
	}
	co.Fail(api.CodeNoLeader)
	co.Fail(api.CodeNoLeader)
	r.finish(co)
	r.result("leader_cpu", 12.5, "% of one core", "over the run")
	r.Trials = []Trial{{N: 1, Killed: "n2", MS: 812}}
	r.note("measured on a test")
	return r
}

func TestReportText(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	space := regexp.MustCompile(` +`)
	flat := space.ReplaceAllString(out, " ")
	for _, want := range []string{
		"== checkout-storm against test cluster",
		"params: clients=4",
		"op ok failed per sec p50 p99 p99.9 max",
		"errors by code:\n checkout no_seats_available 5\n checkout no_leader 2",
		"leader_cpu 12.5 % of one core over the run",
		"1 killed n2 checkout accepted after 812 ms",
		"note: measured on a test",
		"checkout latency (successful requests):",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	// The summary row: 100 ok, 7 failed, p50 2 ms, p99 30 ms, max 3 s.
	row := regexp.MustCompile(`(?m)^ *checkout +100 +7 +[0-9.]+ +2\.0[0-9]ms +30\.[0-9]ms +3\.00s +3\.00s *$`)
	if !row.MatchString(out) {
		t.Errorf("no summary row with 100 ok, 7 failed, p50 2ms, p99 30ms, p99.9 and max 3s:\n%s", out)
	}
	// Histogram rows: 90 at <= 2ms (the fullest, a full bar), 9 at <= 50ms, 1 at <= 5s.
	for _, want := range []string{
		"<= 2.00ms |" + strings.Repeat("#", barWidth) + " 90 (90.0%)",
		"<= 5.00ms | 0 (0.0%)",
		"<= 50.0ms |#### 9 (9.0%)",
		"<= 5.00s |# 1 (1.0%)",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("histogram lacks %q:\n%s", want, out)
		}
	}
}

func TestReportJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	if got.Scenario != "checkout-storm" || got.Params["clients"] != "4" || len(got.Ops) != 1 {
		t.Fatalf("decoded %+v", got)
	}
	o := got.Ops[0]
	if o.OK != 100 || o.Failed != 7 || o.Errors[api.CodeNoSeatsAvailable] != 5 || o.Errors[api.CodeNoLeader] != 2 {
		t.Errorf("op counts %+v", o)
	}
	if o.Latency.P50 < 2 || o.Latency.P50 > 2.02 || o.Latency.Max != 3000 {
		t.Errorf("latency_ms %+v, want p50 about 2 and max 3000", o.Latency)
	}
	var total int64
	for _, b := range o.Histogram {
		total += b.Count
	}
	if total != 100 {
		t.Errorf("histogram holds %d samples, want 100: %+v", total, o.Histogram)
	}
	if len(got.Results) != 1 || got.Results[0].Value != 12.5 || len(got.Trials) != 1 || got.Trials[0].MS != 812 {
		t.Errorf("results %+v trials %+v", got.Results, got.Trials)
	}
	// Several reports are an array.
	buf.Reset()
	if err := WriteJSON(&buf, sampleReport(), sampleReport()); err != nil {
		t.Fatal(err)
	}
	var many []Report
	if err := json.Unmarshal(buf.Bytes(), &many); err != nil || len(many) != 2 {
		t.Fatalf("two reports: %v, %d decoded", err, len(many))
	}
}

func TestReportJSONOpenEndedRow(t *testing.T) {
	o := NewOp("failover")
	o.hist.Record(2 * time.Minute)
	o.ok.Add(1)
	b, err := json.Marshal(o.Report())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"histogram":[{"le_ms":null,"count":1}]`) {
		t.Errorf("a sample past the last edge should be in an open row: %s", b)
	}
}

func TestCheckoutTemplateIsTheCheckoutRequest(t *testing.T) {
	tpl := newCheckoutTemplate(`KEY-"1"`, "m1", "7", "bench-x-w1", 30)
	var got api.CheckoutRequest
	body := tpl.build(nil, 42)
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	want := api.CheckoutRequest{LicenseKey: `KEY-"1"`, Feature: benchFeature, Holder: api.Holder{Machine: "m1", Process: "7"}, RequestID: "bench-x-w1-42", TTLSeconds: 30}
	if got != want {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	// The buffer is reused: the next body replaces the first.
	body = tpl.build(body[:0], 43)
	if !strings.HasSuffix(string(body), `"request_id":"bench-x-w1-43"}`) {
		t.Errorf("second body %s", body)
	}
}

func TestJSONScan(t *testing.T) {
	resp := []byte(`{"lease":{"id":"lse_abc","license_id":"lic1"},"token":"x"}` + "\n")
	if got := jsonString(resp, "id"); got != "lse_abc" {
		t.Errorf(`jsonString(id) = %q`, got)
	}
	if got := jsonString(resp, "missing"); got != "" {
		t.Errorf(`jsonString(missing) = %q`, got)
	}
	errBody := []byte(`{"error":{"code":"no_seats_available","message":"m"}}`)
	if got := jsonString(errBody, "code"); got != api.CodeNoSeatsAvailable {
		t.Errorf(`jsonString(code) = %q`, got)
	}
	if !jsonHasTrue([]byte(`{"valid":true,"code":""}`), "valid") || jsonHasTrue([]byte(`{"valid":false}`), "valid") {
		t.Error("jsonHasTrue")
	}
	v, err := metricValue([]byte("# HELP x\nprocess_cpu_seconds_total_other 9\nprocess_cpu_seconds_total 12.75\n"), "process_cpu_seconds_total")
	if err != nil || v != 12.75 {
		t.Errorf("metricValue = %v, %v", v, err)
	}
}
