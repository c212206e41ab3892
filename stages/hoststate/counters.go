package hoststate

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// counterFiles are the nstat-style counter files under a net directory (/proc/thread-self/net),
// with their parsers. snmp and netstat share a format; snmp6 is one counter a line.
var counterFiles = []struct {
	name  string
	parse func(io.Reader, map[string]uint64) error
}{
	{"snmp", parseSNMP},
	{"netstat", parseSNMP},
	{"snmp6", parseSNMP6},
	{"stat/nf_conntrack", parseConntrackStat},
}

// readCounters reads every counter file under netDir into "Group Name" -> value. A file that
// is missing (snmp6 without IPv6) is skipped; any other failure is returned with the
// counters read so far.
func readCounters(netDir string) (map[string]uint64, []error) {
	counters := map[string]uint64{}
	var errs []error
	for _, cf := range counterFiles {
		path := filepath.Join(netDir, cf.name)
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read counters: %w", err))
			continue
		}
		err = cf.parse(bufio.NewReader(f), counters)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("read counters %s: %w", path, err))
		}
	}
	return counters, errs
}

// parseSNMP parses /proc/net/snmp and /proc/net/netstat: pairs of lines, the first naming
// a group's counters ("Udp: InDatagrams NoPorts ..."), the second giving their values.
// Negative values (Tcp MaxConn is -1) are constants, not counters, and are skipped.
func parseSNMP(r io.Reader, into map[string]uint64) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		names := strings.Fields(sc.Text())
		if len(names) == 0 {
			continue
		}
		if !sc.Scan() {
			return fmt.Errorf("line %d: group %s has no values", line, names[0])
		}
		line++
		values := strings.Fields(sc.Text())
		if len(values) == 0 || values[0] != names[0] || !strings.HasSuffix(names[0], ":") {
			return fmt.Errorf("line %d: values do not follow the names of group %s", line, names[0])
		}
		if len(values) != len(names) {
			return fmt.Errorf("line %d: group %s has %d names and %d values", line, names[0], len(names)-1, len(values)-1)
		}
		group := strings.TrimSuffix(names[0], ":")
		for i := 1; i < len(names); i++ {
			v, err := strconv.ParseInt(values[i], 10, 64)
			if err != nil {
				u, uerr := strconv.ParseUint(values[i], 10, 64)
				if uerr != nil {
					return fmt.Errorf("line %d: %s %s: %w", line, group, names[i], err)
				}
				into[group+" "+names[i]] = u
				continue
			}
			if v >= 0 {
				into[group+" "+names[i]] = uint64(v)
			}
		}
	}
	return sc.Err()
}

// parseConntrackStat parses /proc/net/stat/nf_conntrack: a header naming the counters,
// then a line of hexadecimal values per CPU, summed here as "Conntrack invalid" and so on.
// The invalid counter is how many packets conntrack could not place in a connection, the
// ones a `ct state invalid` rule drops. "entries" is a gauge (the same on every line), not
// a counter.
func parseConntrackStat(r io.Reader, into map[string]uint64) error {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		return fmt.Errorf("no header: %w", cmp.Or(sc.Err(), io.ErrUnexpectedEOF))
	}
	names := strings.Fields(sc.Text())
	for sc.Scan() {
		vals := strings.Fields(sc.Text())
		if len(vals) != len(names) {
			return fmt.Errorf("%d values for %d counters", len(vals), len(names))
		}
		for i, v := range vals {
			if names[i] == "entries" {
				continue
			}
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return fmt.Errorf("counter %s: %w", names[i], err)
			}
			into["Conntrack "+names[i]] += n
		}
	}
	return sc.Err()
}

// parseSNMP6 parses /proc/net/snmp6: "Ip6InReceives 12" lines. The group is the name up to
// its first 6 (Ip6, Icmp6, Udp6, UdpLite6), so names read like snmp's: "Udp6 NoPorts".
func parseSNMP6(r io.Reader, into map[string]uint64) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return fmt.Errorf("line %d: want a name and a value, got %q", line, sc.Text())
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: %s: %w", line, f[0], err)
		}
		name := f[0]
		if i := strings.IndexByte(name, '6'); i > 0 && i < len(name)-1 {
			name = name[:i+1] + " " + name[i+1:]
		}
		into[name] = v
	}
	return sc.Err()
}

// readSoftnetDropped sums the dropped column (the second) of softnet_stat over the CPUs:
// packets the backlog queues had no room for. It counts for the whole host.
func readSoftnetDropped(netDir string) (uint64, error) {
	f, err := os.Open(filepath.Join(netDir, "softnet_stat"))
	if err != nil {
		return 0, fmt.Errorf("read softnet_stat: %w", err)
	}
	defer f.Close()
	n, err := parseSoftnetDropped(f)
	if err != nil {
		return n, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return n, nil
}

func parseSoftnetDropped(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	var sum uint64
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 {
			return sum, fmt.Errorf("line %d: no dropped column", line)
		}
		v, err := strconv.ParseUint(f[1], 16, 32)
		if err != nil {
			return sum, fmt.Errorf("line %d: dropped: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// counterDeltas returns the counters that went up between before and after, sorted by
// name. A counter that went down (reset) or appeared only after is left out: its move is
// unknown.
func counterDeltas(before, after map[string]uint64) []evidence.Counter {
	out := []evidence.Counter{}
	for name, a := range after {
		b, ok := before[name]
		if !ok || a <= b {
			continue
		}
		out = append(out, evidence.Counter{Name: name, Before: b, After: a, Delta: a - b})
	}
	slices.SortFunc(out, func(x, y evidence.Counter) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// softnetDelta is the softnet dropped increase; the column is 32 bits wide and wraps.
func softnetDelta(before, after uint64) uint64 {
	if after >= before {
		return after - before
	}
	return 0
}
