package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tallyhq/tally/api"
)

// emit prints v as indented JSON under --json, and otherwise lets human
// write aligned columns (tab-separated cells) for people.
func (a *app) emit(v any, human func(w io.Writer)) error {
	if a.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	human(tw)
	return tw.Flush()
}

// row writes one tab-separated table row.
func row(w io.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
		if s[i] == "" {
			s[i] = "-"
		}
	}
	fmt.Fprintln(w, strings.Join(s, "\t"))
}

// fmtTime writes a time for people: UTC, to the second.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return fmtTime(*t)
}

// fmtUntil writes a time with how far away it is: "2026-01-02T03:04:05Z (in 59s)".
func fmtUntil(t time.Time) string {
	d := time.Until(t).Round(time.Second)
	if d >= 0 {
		return fmt.Sprintf("%s (in %s)", fmtTime(t), d)
	}
	return fmt.Sprintf("%s (%s ago)", fmtTime(t), -d)
}

// fmtSeats writes seat usage as "cad 1/3, viewer 2/-".
func fmtSeats(seats map[string]api.SeatUsage) string {
	if len(seats) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(seats))
	for _, name := range sortedKeys(seats) {
		u := seats[name]
		total := "-"
		if u.Total >= 0 {
			total = strconv.Itoa(u.Total)
		}
		parts = append(parts, fmt.Sprintf("%s %d/%s", name, u.InUse, total))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// emptyObject is the JSON answer of calls that return `{}`.
type emptyObject struct{}
