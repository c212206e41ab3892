// Package ktime turns the kernel's clock readings into wall time.
package ktime

import (
	"time"

	"golang.org/x/sys/unix"
)

// Mono converts CLOCK_MONOTONIC nanoseconds, as bpf_ktime_get_ns reports them, to wall
// time. The offset is sampled once: a drop report needs milliseconds, not the precision
// an NTP step during a run would disturb.
type Mono struct {
	wall time.Time
	mono int64
}

// NewMono samples the offset between CLOCK_MONOTONIC and wall time.
func NewMono() (Mono, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return Mono{}, err
	}
	// Round(0) strips Go's own monotonic reading, which is not CLOCK_MONOTONIC-based.
	return Mono{wall: time.Now().Round(0), mono: ts.Nano()}, nil
}

// Wall is the wall time of a CLOCK_MONOTONIC reading in nanoseconds.
func (c Mono) Wall(ktimeNs uint64) time.Time {
	return c.wall.Add(time.Duration(int64(ktimeNs) - c.mono))
}

// MonoAt is the clock that read wall and monoNs at the same instant.
func MonoAt(wall time.Time, monoNs int64) Mono { return Mono{wall: wall.Round(0), mono: monoNs} }
