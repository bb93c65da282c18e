package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tallyhq/tally/client"
)

// timeValue is an optional RFC 3339 time flag.
type timeValue struct{ t *time.Time }

func (v *timeValue) Type() string { return "RFC3339" }

func (v *timeValue) String() string {
	if v.t == nil {
		return ""
	}
	return v.t.Format(time.RFC3339Nano)
}

func (v *timeValue) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time such as 2026-11-01T00:00:00Z")
	}
	v.t = &t
	return nil
}

func auditExportCmd(a *app) *cobra.Command {
	var since timeValue
	var after uint64
	var out string
	var pageSize int
	cmd := &cobra.Command{
		Use:   "export [--since RFC3339] [--after N] [-o FILE]",
		Short: "Write audit records as JSON lines for a SIEM",
		Long: `Write the audit records with an index greater than --after, oldest first, one
JSON object per line (the API's audit record), to stdout or to -o FILE.
--since keeps only records stamped at or after that time; records are read
from --after on either way (record times come from whichever node led, so
they are not used to skip ahead), so pass the last exported index as
--after to continue an earlier export cheaply.

Every record is checked against the one before it as it is written (the
same link check as 'tally audit verify'). A broken link does not stop the
export, since the records are still the evidence, but it is reported on
stderr and the command exits 1. With -o the file appears only when the
export is complete. Progress goes to stderr every 10,000 records.`,
		Example: `  tally audit export -o audit.jsonl
  tally audit export --after 120000 >> audit.jsonl
  tally audit export --since 2026-11-01T00:00:00Z | siem-forwarder`,
		Args: args(cobra.NoArgs),
	}
	f := cmd.Flags()
	f.Var(&since, "since", "only records stamped at or after this time")
	f.Uint64Var(&after, "after", 0, "only records with an index greater than this")
	f.StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	f.IntVar(&pageSize, "page-size", defaultAuditPage, "records per audit read (1 to 10000)")
	consistency := consistencyFlag(cmd, "stale or linearizable (default)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if pageSize < 1 || pageSize > maxAuditPage {
			return usagef("--page-size must be between 1 and %d", maxAuditPage)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		ex := &auditExport{c: c, after: after, since: since.t, pageSize: pageSize, consistency: consistency.value, progress: a.stderr}
		if out == "" {
			err = ex.run(cmd.Context(), a.stdout)
		} else {
			err = writeFileAtomic(out, func(w io.Writer) error { return ex.run(cmd.Context(), w) })
		}
		if err != nil {
			return err
		}
		dest := out
		if dest == "" {
			dest = "stdout"
		}
		if ex.written == 0 {
			fmt.Fprintf(a.stderr, "audit export: no records after index %d to write to %s\n", after, dest)
		} else {
			fmt.Fprintf(a.stderr, "audit export: wrote %d records (index %d to %d) to %s\n", ex.written, ex.first, ex.last, dest)
		}
		if ex.check.brokenAt != 0 {
			return &exitCodeError{code: exitError, err: fmt.Errorf("the chain breaks at index %d (%s); run 'tally audit verify'", ex.check.brokenAt, ex.check.broken)}
		}
		return nil
	}
	return cmd
}

// auditExport pages through the chain and writes one record per line.
type auditExport struct {
	c           *client.Client
	after       uint64
	since       *time.Time
	pageSize    int
	consistency string
	progress    io.Writer

	check         chainCheck
	read, written uint64
	first, last   uint64
}

func (e *auditExport) run(ctx context.Context, out io.Writer) error {
	e.check.start = e.after + 1
	if e.after > 0 {
		// Read the record before the first one too, so the first exported
		// record's prev_hash is checked like every other.
		page, err := e.c.Audit(ctx, e.after-1, 1, e.readOpts()...)
		if err != nil {
			return err
		}
		if len(page.Records) == 1 {
			e.check.anchor(page.Records[0])
		}
	}
	p := &auditPager{c: e.c, after: e.after, pageSize: e.pageSize, consistency: e.consistency}
	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw)
	for {
		rec, err := p.next(ctx)
		if err != nil {
			return err
		}
		if rec == nil {
			break
		}
		e.check.add(*rec)
		e.read++
		if e.read%auditProgressEvery == 0 {
			fmt.Fprintf(e.progress, "audit export: %d records read (index %d)\n", e.read, rec.Index)
		}
		if e.since != nil && rec.Time.Before(*e.since) {
			continue
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
		if e.written == 0 {
			e.first = rec.Index
		}
		e.written++
		e.last = rec.Index
	}
	return bw.Flush()
}

func (e *auditExport) readOpts() []client.ReadOption {
	if e.consistency == "" {
		return nil
	}
	return []client.ReadOption{client.WithConsistency(e.consistency)}
}

// writeFileAtomic writes path through a temporary file in the same
// directory, renamed into place only when write succeeds, so a failed
// export never leaves a truncated file that looks complete.
func writeFileAtomic(path string, write func(w io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	err = write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
