package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"
)

// print writes the machine and the results as Markdown, ready for the README.
func (r *results) print(w io.Writer, cfg *config) {
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "Tools: %s\n\n", strings.Join(r.Versions, "; "))

	fmt.Fprintf(w, "Time to armed, from launch until tracing, on an idle machine (median of %d runs; min-max):\n\n", cfg.runs)
	fmt.Fprintln(w, "| tool | armed after | range |")
	fmt.Fprintln(w, "|---|---|---|")
	armedRow := func(label string, xs []time.Duration) {
		if len(xs) == 0 {
			return
		}
		fmt.Fprintf(w, "| %s | %s | %s-%s |\n", label, ms(median(xs)), ms(slices.Min(xs)), ms(slices.Max(xs)))
	}
	armedRow("`diagnose --flow ADDR:PORT --yes -- CMD` (until CMD starts)", r.Armed[diagnose])
	armedRow("`bpftrace -e 'tracepoint:skb:kfree_skb { printf(...) }'` (until BEGIN fires)", r.Armed[bpftrace])
	armedRow("`perf record -e skb:kfree_skb -a -- CMD` (until CMD starts)", r.Armed[perf])
	if len(r.ArmedReport) > 0 {
		fmt.Fprintf(w, "\ndiagnose's own `armed in` (the report's armed_ms): median %s.\n", ms(median(r.ArmedReport)))
	}

	fmt.Fprintf(w, "\nOverhead: a flood of unrelated UDP datagrams to a closed port between two namespaces (%d sender threads, "+
		"one NO_SOCKET drop each datagram) runs throughout; drops per second from the kernel's Udp NoPorts over %s windows. "+
		"Windows with no tracer and with each tracer alternate (a tracer arms, then %s passes before its window), and each "+
		"tracer window is compared with the mean of the no-tracer windows beside it, which share the machine's drift; "+
		"median of %d.\n\n", cfg.senders, cfg.window, cfg.settle, cfg.repeats)
	fmt.Fprintln(w, "The flood through the namespace diagnose runs in (its capture sees every packet of it):")
	fmt.Fprintln(w)
	r.Here.print(w, tracers)
	fmt.Fprintln(w, "\nThe flood between two other namespaces (diagnose's namespace sees none of it; its kfree_skb program sees every drop of the host):")
	fmt.Fprintln(w)
	r.Elsewhere.print(w, elsewhereTracers)

	if len(r.Diag) > 0 {
		get := func(f func(measured) uint64) uint64 {
			xs := make([]uint64, len(r.Diag))
			for i, m := range r.Diag {
				xs[i] = f(m)
			}
			return median(xs)
		}
		cpu := time.Duration(get(func(m measured) uint64 { return uint64(m.cpu) }))
		fmt.Fprintf(w, "\ndiagnose under the flood (median of %d windows):\n\n", len(r.Diag))
		fmt.Fprintln(w, "| | |")
		fmt.Fprintln(w, "|---|---|")
		fmt.Fprintf(w, "| CPU during a %s window (utime+stime, /proc/PID/stat) | %s (%.1f%% of one core) |\n",
			cfg.window, ms(cpu), 100*cpu.Seconds()/cfg.window.Seconds())
		fmt.Fprintf(w, "| CPU over the whole run, report included (wait4) | %s |\n", ms(time.Duration(get(func(m measured) uint64 { return uint64(m.cpuRun) }))))
		fmt.Fprintf(w, "| peak RSS until the end of the window (VmHWM) | %s |\n", mib(get(func(m measured) uint64 { return m.hwm })))
		fmt.Fprintf(w, "| peak RSS over the whole run, report included (wait4 maxrss) | %s |\n", mib(get(func(m measured) uint64 { return m.maxRSS })))
		fmt.Fprintf(w, "| kfree_skb events: seen in the kernel, passed to user space | %s, %d |\n",
			count(get(func(m measured) uint64 { return m.seen })), get(func(m measured) uint64 { return m.match }))
	}

	if len(r.Programs) > 0 && r.ProgramsDrops > 0 {
		fmt.Fprintf(w, "\nWhere diagnose's kernel time goes: its BPF programs over one more %s window with BPF statistics on "+
			"(%s flood drops; the statistics slow it, so no rate is taken from it):\n\n", cfg.window, count(r.ProgramsDrops))
		fmt.Fprintln(w, "| program | runs per drop | ns per run | ns per drop |")
		fmt.Fprintln(w, "|---|---|---|---|")
		var total, rest time.Duration
		var others []string
		for _, p := range r.Programs {
			total += p.Runtime
			perDrop := float64(p.Runtime) / float64(r.ProgramsDrops)
			if p.Runs == 0 || perDrop < 1 {
				// Programs the flood does not run (the flow's socket events): not worth a row.
				rest += p.Runtime
				others = append(others, p.Name)
				continue
			}
			fmt.Fprintf(w, "| %s | %.2f | %.0f | %.0f |\n", p.Name, float64(p.Runs)/float64(r.ProgramsDrops),
				float64(p.Runtime)/float64(p.Runs), perDrop)
		}
		if len(others) > 0 {
			fmt.Fprintf(w, "| others (%s) | | | %.0f |\n", strings.Join(others, ", "), float64(rest)/float64(r.ProgramsDrops))
		}
		fmt.Fprintf(w, "| all | | | %.0f |\n", float64(total)/float64(r.ProgramsDrops))
		if xs := r.Here.Rates[none]; len(xs) > 0 {
			fmt.Fprintf(w, "\nWith no tracer a flood drop costs about %.0f ns of CPU (%d CPUs busy / %s drops/s); "+
				"the programs' time excludes the hooks that call them (tracepoint trampolines, tcx) and the nftables trace chain.\n",
				float64(runtime.NumCPU())*1e9/median(xs), runtime.NumCPU(), kilo(median(xs)))
		}
	}
	if foreign := append(slices.Clone(r.Here.Foreign), r.Elsewhere.Foreign...); len(foreign) > 0 {
		fmt.Fprintf(w, "\nCaution: someone else's tracing programs were loaded during %d windows, so those rates are low: %s.\n",
			len(foreign), strings.Join(foreign, "; "))
	}
	fmt.Fprintf(w, "\nThe bench took %s.\n", r.Took.Round(time.Second))
}

// labels name the tracers in the tables.
var labels = map[string]string{
	diagnose:       "diagnose, diagnosing another flow (capture on tcx)",
	diagnoseSocket: "diagnose --capture socket (the fallback: an AF_PACKET capture)",
	tcxFloor:       "floor: an empty tcx program on both directions of each interface of diagnose's namespace (any tcx capture's least cost)",
	tapFloor:       "floor: a packet socket on diagnose's namespace whose filter refuses every packet (any AF_PACKET capture's least cost)",
	kfreeFloor:     "floor: an empty BPF program on tp_btf/kfree_skb (any kfree_skb tracer's least cost)",
	bpftrace:       "bpftrace one-liner printing every kfree_skb (to /dev/null)",
	perf:           "`perf record -e skb:kfree_skb -a`",
}

// print writes one flood's table: the no-tracer windows, then each tracer of trs.
func (o overhead) print(w io.Writer, trs []string) {
	fmt.Fprintln(w, "| tracer | drops/s | vs no tracer | each window vs its neighbours |")
	fmt.Fprintln(w, "|---|---|---|---|")
	if xs := o.Rates[none]; len(xs) > 0 {
		fmt.Fprintf(w, "| none | %s | 1.000 | windows from %s to %s |\n", kilo(median(xs)), kilo(slices.Min(xs)), kilo(slices.Max(xs)))
	}
	for _, tr := range trs {
		xs, ratios := o.Rates[tr], o.Ratios[tr]
		if len(xs) == 0 || len(ratios) == 0 {
			continue
		}
		m := median(ratios)
		each := make([]string, len(ratios))
		for i, x := range ratios {
			each[i] = fmt.Sprintf("%.3f", x)
		}
		fmt.Fprintf(w, "| %s | %s | %.3f (%s) | %s |\n", labels[tr], kilo(median(xs)), m, pct(m-1), strings.Join(each, ", "))
	}
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

// count writes a large count in thousands or millions.
func count(n uint64) string {
	if n >= 10_000_000 {
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	}
	if n >= 10_000 {
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// kilo writes a rate in thousands: 312k.
func kilo(x float64) string { return fmt.Sprintf("%.0fk", x/1000) }

// pct writes a change as a signed percentage: -3.2%, +0.4%.
func pct(x float64) string { return fmt.Sprintf("%+.1f%%", 100*x) }
