package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// snmpCounter finds one counter in /proc/net/snmp's text: pairs of lines, names then
// values, each starting with the group ("Udp: InDatagrams NoPorts ...").
func snmpCounter(text []byte, group, name string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	prefix := group + ":"
	for sc.Scan() {
		names := strings.Fields(sc.Text())
		if len(names) == 0 || names[0] != prefix {
			continue
		}
		if !sc.Scan() {
			break
		}
		values := strings.Fields(sc.Text())
		if len(values) != len(names) || values[0] != prefix {
			return 0, fmt.Errorf("/proc/net/snmp: group %s has %d names and %d values", group, len(names), len(values))
		}
		for i, n := range names {
			if n == name {
				return strconv.ParseUint(values[i], 10, 64)
			}
		}
		return 0, fmt.Errorf("/proc/net/snmp: no %s in group %s", name, group)
	}
	return 0, fmt.Errorf("/proc/net/snmp: no group %s", group)
}

// ticks is the unit of utime and stime in /proc/PID/stat. Linux reports them in USER_HZ,
// which is 100 on every architecture Go supports.
const ticks = 10 * time.Millisecond

// cpuTime is utime+stime of process pid (its threads, not its children).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads fields 14 and 15 (utime, stime) of a /proc/PID/stat line. The command
// name, field 2, is in parentheses and may hold spaces: fields are counted after its ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/PID/stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, f[11].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat: %d fields after the command name", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/PID/stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(ut+st) * ticks, nil
}

// memory is what /proc/PID/status says of a process's resident memory, in bytes.
type memory struct {
	RSS, HWM uint64 // VmRSS now, VmHWM its peak so far
}

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (memory, error) {
	var m memory
	var found int
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("/proc/PID/status: %s is %q", k, v)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc/PID/status: %s: %w", k, err)
		}
		if k == "VmRSS" {
			m.RSS = n << 10
		} else {
			m.HWM = n << 10
		}
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("/proc/PID/status: no VmRSS and VmHWM (a kernel thread, or the process exited)")
	}
	return m, nil
}

// monotonic is CLOCK_MONOTONIC, the clock bpftrace's nsecs and the stamp helper share.
func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// machine describes this host for the table: CPU model, cores, memory, kernel.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	kernel := "unknown kernel"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
	}
	mem := ""
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		mem = fmt.Sprintf(", %.0f GiB", float64(si.Totalram)*float64(si.Unit)/(1<<30))
	}
	return fmt.Sprintf("%s, %d cores%s, Linux %s", model, runtime.NumCPU(), mem, kernel)
}
