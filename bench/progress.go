package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress redraws one status line about once a second while a scenario
// runs: ops/s over the last second, errors so far, elapsed time. On a
// terminal the line is redrawn in place; elsewhere (a log, CI) each update
// is a plain line of its own.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	ops   []*Op
	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
	// extra, when set, adds a scenario's own state to the line.
	extra func() string
}

const progressEvery = time.Second

// startProgress begins redrawing; w nil means no progress at all.
func startProgress(w io.Writer, tty bool, label string, extra func() string, ops ...*Op) *progress {
	p := &progress{w: w, tty: tty, label: label, ops: ops, start: time.Now(), stop: make(chan struct{}), extra: extra}
	if w == nil {
		return p
	}
	p.done.Add(1)
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer p.done.Done()
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	lastOps, lastAt := int64(0), p.start
	for {
		select {
		case <-p.stop:
			if p.tty {
				fmt.Fprint(p.w, "\r\033[K")
			}
			return
		case now := <-t.C:
			ops, errs := p.totals()
			rate := float64(ops-lastOps) / now.Sub(lastAt).Seconds()
			lastOps, lastAt = ops, now
			line := p.line(now.Sub(p.start), ops, errs, rate)
			if p.tty {
				fmt.Fprint(p.w, "\r\033[K"+line)
			} else {
				fmt.Fprintln(p.w, line)
			}
		}
	}
}

func (p *progress) totals() (ops, errs int64) {
	for _, o := range p.ops {
		ops += o.OK() + o.Errors()
		errs += o.Errors()
	}
	return ops, errs
}

func (p *progress) line(elapsed time.Duration, ops, errs int64, rate float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  %.0f ops/s  ops %d  errors %d", p.label, elapsed.Round(time.Second), rate, ops, errs)
	if p.extra != nil {
		if s := p.extra(); s != "" {
			b.WriteString("  " + s)
		}
	}
	return b.String()
}

// Stop ends the redrawing and clears the line on a terminal.
func (p *progress) Stop() {
	if p.w == nil {
		return
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.done.Wait()
}
