package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
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
	if r.Baseline != nil {
		label := r.baseName() + ", the same command (until CMD starts)"
		if lacks := r.Baseline.lacks[baselineTCX]; len(lacks) > 0 {
			fmt.Fprintf(w, "| %s | not measured: it has no %s | |\n", label, strings.Join(lacks, ", "))
		}
		armedRow(label, r.Armed[baselineTCX])
	}
	armedRow("`bpftrace -e 'tracepoint:skb:kfree_skb { printf(...) }'` (until BEGIN fires)", r.Armed[bpftrace])
	armedRow("`perf record -e skb:kfree_skb -a -- CMD` (until CMD starts)", r.Armed[perf])
	if xs := r.ArmedReport[diagnose]; len(xs) > 0 {
		fmt.Fprintf(w, "\ndiagnose's own `armed in` (the report's armed_ms): median %s", ms(median(xs)))
		if xs := r.ArmedReport[baselineTCX]; len(xs) > 0 {
			fmt.Fprintf(w, "; %s's: median %s", r.baseName(), ms(median(xs)))
		}
		fmt.Fprintln(w, ".")
	}

	fmt.Fprintf(w, "\nOverhead: a flood of unrelated UDP datagrams to a closed port between two namespaces (%d sender threads, "+
		"one NO_SOCKET drop each datagram) runs throughout; drops per second from the kernel's Udp NoPorts over %s windows. "+
		"Windows with no tracer and with each tracer alternate (a tracer arms, then %s passes before its window), and each "+
		"tracer window is compared with the mean of the no-tracer windows beside it, which share the machine's drift; "+
		"median of %d.\n\n", cfg.senders, cfg.window, cfg.settle, cfg.repeats)
	fmt.Fprintln(w, "The flood through the namespace diagnose runs in (its capture sees every packet of it):")
	fmt.Fprintln(w)
	r.overheadTable(w, r.Here, tracers)
	r.ratioLines(w, r.Here, tracers, "")
	fmt.Fprintln(w, "\nThe flood between two other namespaces (diagnose's namespace sees none of it; its kfree_skb program sees every drop of the host):")
	fmt.Fprintln(w)
	r.overheadTable(w, r.Elsewhere, elsewhereTracers)
	r.ratioLines(w, r.Elsewhere, elsewhereTracers, ", flood elsewhere")
	if len(r.NAT.Ratios[diagnose]) > 0 {
		fmt.Fprintln(w, "\nThe flood DNATed by diagnose's namespace into a container namespace behind it (nftables, prerouting; each datagram translated by conntrack, forwarded, dropped in the container):")
		fmt.Fprintln(w)
		r.overheadTable(w, r.NAT, natTracers)
		r.ratioLines(w, r.NAT, natTracers, ", flood through NAT")
		r.natLine(w)
		if p := r.NATPrograms; len(p.runs) > 0 && p.drops > 0 {
			fmt.Fprintf(w, "\nWhere diagnose's kernel time goes under the flood through NAT (one more %s window with BPF statistics on, %s flood drops):\n\n", cfg.window, count(p.drops))
			p.print(w)
		}
	}

	// Columns: diagnose, and its baseline when it was measured.
	full := withTwins([]string{diagnose}, func(tr string) bool { return len(r.Diag[tr]) > 0 })
	if len(r.Diag[diagnose]) > 0 {
		row := func(label string, cell func([]measured) string) {
			fmt.Fprintf(w, "| %s |", label)
			for _, tr := range full {
				fmt.Fprintf(w, " %s |", cell(r.Diag[tr]))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "\ndiagnose under the flood (median of %d windows):\n\n", len(r.Diag[diagnose]))
		if len(full) > 1 {
			fmt.Fprintf(w, "| | diagnose | %s |\n|---|---|---|\n", r.baseName())
		} else {
			fmt.Fprintln(w, "| | |\n|---|---|")
		}
		row(fmt.Sprintf("CPU during a %s window (utime+stime, /proc/PID/stat)", cfg.window), func(ws []measured) string {
			cpu := time.Duration(medianOf(ws, func(m measured) uint64 { return uint64(m.cpu) }))
			return fmt.Sprintf("%s (%.1f%% of one core)", ms(cpu), 100*cpu.Seconds()/cfg.window.Seconds())
		})
		row("CPU over the whole run, report included (wait4)", func(ws []measured) string {
			return ms(time.Duration(medianOf(ws, func(m measured) uint64 { return uint64(m.cpuRun) })))
		})
		row("peak RSS until the end of the window (VmHWM)", func(ws []measured) string {
			return mib(medianOf(ws, func(m measured) uint64 { return m.hwm }))
		})
		row("peak RSS over the whole run, report included (wait4 maxrss)", func(ws []measured) string {
			return mib(medianOf(ws, func(m measured) uint64 { return m.maxRSS }))
		})
		row("kfree_skb events: seen in the kernel, passed to user space", func(ws []measured) string {
			return fmt.Sprintf("%s, %d", count(medianOf(ws, func(m measured) uint64 { return m.seen })), medianOf(ws, func(m measured) uint64 { return m.match }))
		})
	}

	var programsShown bool
	for _, tr := range full {
		p := r.Programs[tr]
		if len(p.runs) == 0 || p.drops == 0 {
			continue
		}
		programsShown = true
		fmt.Fprintf(w, "\nWhere %s's kernel time goes: its BPF programs over one more %s window with BPF statistics on "+
			"(%s flood drops; the statistics slow it, so no rate is taken from it):\n\n", r.who(tr), cfg.window, count(p.drops))
		p.print(w)
	}
	if programsShown {
		if xs := r.Here.Rates[none]; len(xs) > 0 {
			fmt.Fprintf(w, "\nWith no tracer a flood drop costs about %.0f ns of CPU (%d CPUs busy / %s drops/s); "+
				"the programs' time excludes the hooks that call them (tracepoint trampolines, tcx) and the nftables trace chain.\n",
				float64(runtime.NumCPU())*1e9/median(xs), runtime.NumCPU(), kilo(median(xs)))
		}
	}
	for _, tr := range full {
		// A diagnose that has no tcx, or cannot use it here, captures with its socket: its
		// row would compare another capture than it says.
		var other []string
		for _, m := range r.Diag[tr] {
			if m.method != "" && m.method != evidence.CaptureTCX {
				other = append(other, m.method)
			}
		}
		if len(other) > 0 {
			fmt.Fprintf(w, "\nCaution: %s captured with %s, not tcx, in %d of its %d windows (its reports' arrival.method).\n",
				r.who(tr), strings.Join(slices.Compact(other), ", "), len(other), len(r.Diag[tr]))
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
	hooksFloor:     "floor: empty programs on every hook diagnose puts on every packet at once (tcx both ways, tp_btf/kfree_skb, tp_btf/net_dev_queue)",
	bpftrace:       "bpftrace one-liner printing every kfree_skb (to /dev/null)",
	perf:           "`perf record -e skb:kfree_skb -a`",
}

// overheadTable writes one flood's table: the no-tracer windows, then each tracer of trs,
// each current diagnose followed by its baseline.
func (r *results) overheadTable(w io.Writer, o overhead, trs []string) {
	fmt.Fprintln(w, "| tracer | drops/s | vs no tracer | each window vs its neighbours |")
	fmt.Fprintln(w, "|---|---|---|---|")
	if xs := o.Rates[none]; len(xs) > 0 {
		fmt.Fprintf(w, "| none | %s | 1.000 | windows from %s to %s |\n", kilo(median(xs)), kilo(slices.Min(xs)), kilo(slices.Max(xs)))
	}
	for _, tr := range withTwins(trs, func(string) bool { return r.Baseline != nil }) {
		if r.Baseline != nil {
			if lacks := r.Baseline.lacks[tr]; len(lacks) > 0 {
				fmt.Fprintf(w, "| %s | not measured: it has no %s | | |\n", r.label(tr), strings.Join(lacks, ", "))
				continue
			}
		}
		xs, ratios := o.Rates[tr], o.Ratios[tr]
		if len(xs) == 0 || len(ratios) == 0 {
			continue
		}
		m := median(ratios)
		each := make([]string, len(ratios))
		for i, x := range ratios {
			each[i] = fmt.Sprintf("%.3f", x)
		}
		fmt.Fprintf(w, "| %s | %s | %.3f (%s) | %s |\n", r.label(tr), kilo(median(xs)), m, pct(m-1), strings.Join(each, ", "))
	}
}

// ratioLines says, for each current diagnose tracer of trs measured beside its baseline,
// its flood ratio (the median of its windows') over the baseline's: 1 is as before, below
// 1 is a costlier diagnose. where tells the flood.
func (r *results) ratioLines(w io.Writer, o overhead, trs []string, where string) {
	if r.Baseline == nil {
		return
	}
	for _, tr := range trs {
		twin, ok := twins[tr]
		if !ok {
			continue
		}
		what := captureOf[tr] + where
		if lacks := r.Baseline.lacks[twin]; len(lacks) > 0 {
			fmt.Fprintf(w, "\nflood ratio: no baseline (%s): %s has no %s\n", what, r.baseName(), strings.Join(lacks, ", "))
			continue
		}
		cur, base := o.Ratios[tr], o.Ratios[twin]
		if len(cur) == 0 || len(base) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nflood ratio: %.3f of baseline (%s)\n", median(cur)/median(base), what)
	}
}

// natLine compares diagnose's ratio under the flood through NAT with its ratio under the
// flood through its namespace without NAT, in the same run: translations must not cost it
// more than a point.
func (r *results) natLine(w io.Writer) {
	nat, plain := r.NAT.Ratios[diagnose], r.Here.Ratios[diagnose]
	if len(nat) == 0 || len(plain) == 0 {
		return
	}
	d := median(nat) - median(plain)
	verdict := "within one point"
	if d < -0.01 {
		verdict = "more than one point lower"
	}
	fmt.Fprintf(w, "\nNAT: diagnose's ratio %.3f through NAT, %.3f without (the first table): %+.1f points, %s.\n", median(nat), median(plain), 100*d, verdict)
	// The floor of the hooks alone, empty, under both floods: what the path through NAT
	// costs any tool hooked where diagnose is, before it does anything.
	fnat, fplain := r.NAT.Ratios[hooksFloor], r.Here.Ratios[hooksFloor]
	if len(fnat) == 0 || len(fplain) == 0 {
		return
	}
	fd := median(fnat) - median(fplain)
	fmt.Fprintf(w, "The floor of its hooks alone (empty programs): %.3f through NAT, %.3f without: %+.1f points; diagnose beyond its floor: %+.1f points through NAT, %+.1f without.\n",
		median(fnat), median(fplain), 100*fd, 100*(median(nat)-median(fnat)), 100*(median(plain)-median(fplain)))
}

// label names tracer tr in the tables; a baseline tracer is named as its current twin, with
// the baseline after "diagnose".
func (r *results) label(tr string) string {
	if cur := twinOf(tr); cur != tr {
		return r.baseName() + strings.TrimPrefix(labels[cur], "diagnose")
	}
	return labels[tr]
}

// who is "diagnose", or the baseline's name for a baseline tracer.
func (r *results) who(tr string) string {
	if twinOf(tr) != tr {
		return r.baseName()
	}
	return "diagnose"
}

// baseName is the baseline as the rows name it: "diagnose (v0.3.0 539e901)".
func (r *results) baseName() string { return "diagnose (" + r.Baseline.name() + ")" }

// print writes the programs' table: the costliest first, those the flood does not run in one row.
func (p programs) print(w io.Writer) {
	fmt.Fprintln(w, "| program | runs per drop | ns per run | ns per drop |")
	fmt.Fprintln(w, "|---|---|---|---|")
	var total, rest time.Duration
	var others []string
	for _, run := range p.runs {
		total += run.Runtime
		perDrop := float64(run.Runtime) / float64(p.drops)
		if run.Runs == 0 || perDrop < 1 {
			// Programs the flood does not run (the flow's socket events): not worth a row.
			rest += run.Runtime
			others = append(others, run.Name)
			continue
		}
		fmt.Fprintf(w, "| %s | %.2f | %.0f | %.0f |\n", run.Name, float64(run.Runs)/float64(p.drops),
			float64(run.Runtime)/float64(run.Runs), perDrop)
	}
	if len(others) > 0 {
		fmt.Fprintf(w, "| others (%s) | | | %.0f |\n", strings.Join(others, ", "), float64(rest)/float64(p.drops))
	}
	fmt.Fprintf(w, "| all | | | %.0f |\n", float64(total)/float64(p.drops))
}

// medianOf is the median of f over the windows ws.
func medianOf(ws []measured, f func(measured) uint64) uint64 {
	xs := make([]uint64, len(ws))
	for i, m := range ws {
		xs[i] = f(m)
	}
	return median(xs)
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
