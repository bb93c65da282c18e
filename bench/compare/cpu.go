package main

import (
	"os"
	"strconv"
	"strings"
)

// cpuTimes reads the machine-wide busy and total CPU ticks from /proc/stat
// (Linux); ok is false elsewhere. The busy share during a cell tells
// whether the machine was saturated (CPU-bound) or waiting (latency-bound:
// fsync, round trips). It counts every process, other work included.
func cpuTimes() (busy, total uint64, ok bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, true
}

// cpuBusyPercent is the busy share between two readings.
func cpuBusyPercent(b0, t0, b1, t1 uint64) float64 {
	if t1 <= t0 {
		return 0
	}
	return 100 * float64(b1-b0) / float64(t1-t0)
}
