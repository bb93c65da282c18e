package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
)

// backends in table order; a backend with no results file shows dashes.
var backends = []string{"raft", "tally", "etcd"}

// headlineKind is the request whose latency the table shows: one apply for
// raw raft, the checkout (acquire) for the seat backends.
var headlineKind = map[string]string{"raft": "apply", "tally": "acquire", "etcd": "acquire"}

// Row is one concurrency across the backends.
type Row struct {
	Concurrency int              `json:"concurrency"`
	Cells       map[string]*Cell `json:"cells"`
	// Ratios of ops/s; absent when a side was not measured.
	TallyRaft *float64 `json:"tally_over_raft,omitempty"`
	TallyEtcd *float64 `json:"tally_over_etcd,omitempty"`
}

// Report is the merged result of a run.sh.
type Report struct {
	Machine  map[string]string `json:"machine"`
	Duration string            `json:"duration"`
	Rows     []Row             `json:"rows"`
}

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	asJSON := fs.Bool("json", false, "print JSON instead of the table")
	_ = fs.Parse(args)
	var runs []Run
	for _, path := range fs.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var r Run
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		runs = append(runs, r)
	}
	rep := merge(runs)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printTable(os.Stdout, rep)
	return nil
}

func merge(runs []Run) Report {
	rep := Report{Machine: map[string]string{
		"cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH}}
	byC := map[int]*Row{}
	for _, r := range runs {
		if rep.Duration == "" {
			rep.Duration = r.Duration
		}
		for i := range r.Cells {
			c := &r.Cells[i]
			row := byC[c.Concurrency]
			if row == nil {
				row = &Row{Concurrency: c.Concurrency, Cells: map[string]*Cell{}}
				byC[c.Concurrency] = row
			}
			row.Cells[r.Backend] = c
		}
	}
	for _, row := range byC {
		row.TallyRaft = ratio(row.Cells["tally"], row.Cells["raft"])
		row.TallyEtcd = ratio(row.Cells["tally"], row.Cells["etcd"])
		rep.Rows = append(rep.Rows, *row)
	}
	sort.Slice(rep.Rows, func(i, j int) bool { return rep.Rows[i].Concurrency < rep.Rows[j].Concurrency })
	return rep
}

func ratio(a, b *Cell) *float64 {
	if a == nil || b == nil || b.OpsPerSec == 0 {
		return nil
	}
	v := a.OpsPerSec / b.OpsPerSec
	return &v
}

func printTable(w io.Writer, rep Report) {
	fmt.Fprintf(w, "%s per concurrency, 3 nodes on loopback, load generator on the same machine\n", rep.Duration)
	fmt.Fprintln(w, "ops/s: raft = entries applied; tally, etcd = seat requests (checkouts + checkins) answered")
	fmt.Fprintln(w, "p50/p99 (ms): raft = one apply; tally, etcd = one checkout (acquire)")
	fmt.Fprintln(w)
	head := fmt.Sprintf("| %4s |", "c")
	sep := "|-----:|"
	for _, b := range backends {
		head += fmt.Sprintf(" %s ops/s | p50 | p99 |", b)
		sep += "------:|----:|----:|"
	}
	head += " tally/raft | tally/etcd |"
	sep += "------:|------:|"
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	var notes []string
	for _, row := range rep.Rows {
		line := fmt.Sprintf("| %4d |", row.Concurrency)
		for _, b := range backends {
			c := row.Cells[b]
			if c == nil {
				line += " - | - | - |"
				continue
			}
			l := c.Latency[headlineKind[b]]
			line += fmt.Sprintf(" %.0f | %.2f | %.2f |", c.OpsPerSec, l.P50, l.P99)
			if len(c.Errors) > 0 {
				notes = append(notes, fmt.Sprintf("%s c=%d errors: %s", b, row.Concurrency, formatCounts(c.Errors)))
			}
			if n := c.Extra["cas_retries"]; n > 0 {
				notes = append(notes, fmt.Sprintf("%s c=%d lost CAS races (retried): %d", b, row.Concurrency, n))
			}
		}
		line += fmt.Sprintf(" %s | %s |", fmtRatio(row.TallyRaft, "%.0f%%", 100), fmtRatio(row.TallyEtcd, "%.1fx", 1))
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "machine CPU busy during each cell, % of all cores (every process counts, other work too):")
	for _, b := range backends {
		var parts []string
		for _, row := range rep.Rows {
			if c := row.Cells[b]; c != nil && c.CPUBusy > 0 {
				parts = append(parts, fmt.Sprintf("c=%d %.0f%%", row.Concurrency, c.CPUBusy))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "  %-5s %s\n", b, strings.Join(parts, ", "))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
}

func fmtRatio(v *float64, format string, scale float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v*scale)
}

func formatCounts(m map[string]int64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// latencyLine is the progress line's latency part.
func latencyLine(c Cell) string {
	var kinds []string
	for k := range c.Latency {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		l := c.Latency[k]
		parts = append(parts, fmt.Sprintf("%s p50 %.2fms p99 %.2fms", k, l.P50, l.P99))
	}
	if len(c.Errors) > 0 {
		parts = append(parts, "errors "+formatCounts(c.Errors))
	}
	return strings.Join(parts, ", ")
}
