package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what one scenario measured. `tally bench --json` prints it as
// is; WriteText prints it for people.
type Report struct {
	Scenario string `json:"scenario"`
	// Target says what was measured: the addresses, or the local cluster.
	Target   string            `json:"target"`
	Started  time.Time         `json:"started"`
	ElapsedS float64           `json:"elapsed_s"`
	Params   map[string]string `json:"params"`
	Ops      []OpReport        `json:"ops"`
	// Results are the scenario's own measurements (time until seats are
	// free, leader CPU, patch latency, failover median...).
	Results []Result `json:"results,omitempty"`
	// Trials are failover's kills, one row each.
	Trials []Trial   `json:"trials,omitempty"`
	Notes  []string  `json:"notes,omitempty"`
	start  time.Time // for ElapsedS
}

// OpReport sums up one Op. Latencies are of successful requests, in
// milliseconds; failures are only counted, by error code.
type OpReport struct {
	Name      string           `json:"name"`
	OK        int64            `json:"ok"`
	Failed    int64            `json:"failed"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	ElapsedS  float64          `json:"elapsed_s"`
	PerSecond float64          `json:"per_second"`
	Latency   Latency          `json:"latency_ms"`
	Histogram []Bar            `json:"histogram,omitempty"`
}

// Latency holds the quantiles of an op, in milliseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Result is one measurement of a scenario that is not an op's latency.
type Result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Note  string  `json:"note,omitempty"`
}

// Trial is one failover: the leader killed and the time until a checkout
// through a survivor was accepted.
type Trial struct {
	N      int     `json:"n"`
	Killed string  `json:"killed"`
	MS     float64 `json:"ms"`
	Error  string  `json:"error,omitempty"`
}

// newReport starts a report for scenario against target.
func newReport(scenario, target string) *Report {
	now := time.Now()
	return &Report{Scenario: scenario, Target: target, Started: now.UTC(), Params: map[string]string{}, start: now}
}

func (r *Report) param(name string, v any) { r.Params[name] = fmt.Sprint(v) }

func (r *Report) result(name string, value float64, unit, note string) {
	r.Results = append(r.Results, Result{Name: name, Value: value, Unit: unit, Note: note})
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// finish adds the ops' summaries and the elapsed time.
func (r *Report) finish(ops ...*Op) {
	for _, o := range ops {
		r.Ops = append(r.Ops, o.Report())
	}
	r.ElapsedS = time.Since(r.start).Seconds()
}

// WriteJSON prints reports as indented JSON: one object for one report, an
// array for several (`tally bench all`).
func WriteJSON(w io.Writer, reports ...*Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(reports) == 1 {
		return enc.Encode(reports[0])
	}
	return enc.Encode(reports)
}

// barWidth is the length of the longest histogram bar.
const barWidth = 40

// WriteText prints the report for people: a summary table, errors by code,
// the scenario's results, and a latency histogram per op.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "== %s against %s\n", r.Scenario, r.Target)
	fmt.Fprintf(&b, "params:  %s\n", formatParams(r.Params))
	fmt.Fprintf(&b, "elapsed: %s\n\n", time.Duration(r.ElapsedS*float64(time.Second)).Round(time.Millisecond))

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tok\tfailed\tper sec\tp50\tp99\tp99.9\tmax\t")
	for _, o := range r.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t\n", o.Name, o.OK, o.Failed, o.PerSecond,
			fmtMS(o.Latency.P50, o.OK), fmtMS(o.Latency.P99, o.OK), fmtMS(o.Latency.P999, o.OK), fmtMS(o.Latency.Max, o.OK))
	}
	_ = tw.Flush()

	var errLines []string
	for _, o := range r.Ops {
		for _, code := range sortedCodes(o.Errors) {
			errLines = append(errLines, fmt.Sprintf("  %s\t%s\t%d", o.Name, code, o.Errors[code]))
		}
	}
	if len(errLines) > 0 {
		b.WriteString("\nerrors by code:\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, l := range errLines {
			fmt.Fprintln(tw, l)
		}
		_ = tw.Flush()
	}
	if len(r.Trials) > 0 {
		b.WriteString("\ntrials:\n")
		for _, t := range r.Trials {
			if t.Error != "" {
				fmt.Fprintf(&b, "  %d  killed %s  failed: %s\n", t.N, t.Killed, t.Error)
				continue
			}
			fmt.Fprintf(&b, "  %d  killed %s  checkout accepted after %.0f ms\n", t.N, t.Killed, t.MS)
		}
	}
	if len(r.Results) > 0 {
		b.WriteString("\nresults:\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, res := range r.Results {
			fmt.Fprintf(tw, "  %s\t%s %s\t%s\n", res.Name, fmtValue(res.Value), res.Unit, res.Note)
		}
		_ = tw.Flush()
	}
	for _, o := range r.Ops {
		if len(o.Histogram) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s latency (successful requests):\n", o.Name)
		writeBars(&b, o.Histogram)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeBars draws one row per histogram bar, scaled to the fullest row.
func writeBars(b *strings.Builder, bars []Bar) {
	var most, total int64
	for _, bar := range bars {
		most = max(most, bar.Count)
		total += bar.Count
	}
	for _, bar := range bars {
		label := "> " + fmtDuration(barEdges[len(barEdges)-2])
		if bar.LeMS != nil {
			label = "<= " + fmtDuration(bar.UpTo)
		}
		n := 0
		if most > 0 {
			n = int((bar.Count*barWidth + most - 1) / most) // a non-empty row shows at least one #
		}
		fmt.Fprintf(b, "  %-9s |%-*s %d (%.1f%%)\n", label, barWidth, strings.Repeat("#", n), bar.Count,
			100*float64(bar.Count)/float64(total))
	}
}

func formatParams(p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return strings.Join(parts, " ")
}

// fmtMS writes a latency in milliseconds with a unit people read at a
// glance; "-" when nothing succeeded.
func fmtMS(v float64, n int64) string {
	if n == 0 {
		return "-"
	}
	return fmtDuration(time.Duration(v * float64(time.Millisecond)))
}

// fmtDuration writes d with three significant digits: 412µs, 5.12ms, 1.23s.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", ms(d))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", ms(d))
	case d < time.Second:
		return fmt.Sprintf("%.0fms", ms(d))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func fmtValue(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}
