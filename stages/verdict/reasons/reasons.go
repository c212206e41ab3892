// Package reasons is the knowledge base of kernel drop reasons: for each reason of enum
// skb_drop_reason, the stage where the kernel emits it, what it means and what to do, as
// data. A fix is a template whose {name} placeholders are filled from Facts, so the same
// entry reads right for any flow, and a fix that depends on the host's state names the
// states it knows (Situation) instead of computing them.
package reasons

import (
	"iter"
	"maps"
	"slices"
	"strings"
)

// Version numbers the table: it goes up whenever an entry is added, removed or changes
// meaning (a test holds the table's digest per version), so a reader of a verdict can
// tell which knowledge explained it.
const Version = 1

// checkedKernels are the kernels whose whole enum skb_drop_reason the table was checked
// against, by release (testdata/kernels; TestRecordedKernelsExplained keeps the two in
// step). A reason of a kernel not among them may be missing.
var checkedKernels = []string{"6.1.0-57-amd64", "6.18.44-fc-v1272"}

// Kernels returns the releases of the kernels the table was checked against.
func Kernels() []string { return slices.Clone(checkedKernels) }

// Entry is what the table knows of one reason.
type Entry struct {
	// Stage is where the kernel emits the reason, named as package verdict names stages;
	// "" when the reason says nothing of the place (NOT_SPECIFIED), so the stage must come
	// from the function and the stack.
	Stage string
	// Why says in plain words what the reason means.
	Why string
	// Fix is what to do, a template filled from Facts.
	Fix string
	// FixIf replaces Fix when the verdict found the host in one of these situations.
	FixIf map[Situation]string
}

// FixFor fills the entry's fix for one run: the fix of the first situation of f the
// entry knows, else its plain fix.
func (e Entry) FixFor(f Facts) string {
	for _, s := range f.Situations {
		if t, ok := e.FixIf[s]; ok {
			return Fill(t, f)
		}
	}
	return Fill(e.Fix, f)
}

// Lookup returns the reason's entry: the core table first, then the subsystems by
// prefix. An unknown reason (a newer kernel's) returns false.
func Lookup(reason string) (Entry, bool) {
	name := canonical(reason)
	if name == "" {
		return Entry{}, false
	}
	if e, ok := core[name]; ok {
		return e, true
	}
	// Full enum names: SKB_DROP_REASON_NO_SOCKET, SKB_CONSUMED.
	for _, prefix := range []string{"SKB_DROP_REASON_", "SKB_"} {
		if short, ok := strings.CutPrefix(name, prefix); ok {
			if e, ok := core[short]; ok {
				return e, true
			}
		}
	}
	for _, s := range subsystems {
		for _, p := range s.prefixes {
			if strings.HasPrefix(name, p) {
				return s.entry, true
			}
		}
	}
	return Entry{}, false
}

// StageVaries tells whether the reason's stage in the table is only its most common one,
// to be overridden by the dropping function or the stack when they tell.
func StageVaries(reason string) bool {
	return stageVaries[canonical(reason)]
}

// StandsFor names the reason a drop without one means at a function that drops for one
// cause only.
func StandsFor(function string) (string, bool) {
	r, ok := standsFor[function]
	return r, ok
}

// OfFunction explains drops without a reason at a function whose drops have no reason of
// their own in the kernel's enum.
func OfFunction(function string) (Entry, bool) {
	e, ok := ofFunction[function]
	return e, ok
}

// Entries yields every entry of the knowledge base: core reasons by name, subsystems by
// their first prefix, functions by name.
func Entries() iter.Seq2[string, Entry] {
	return func(yield func(string, Entry) bool) {
		for _, name := range slices.Sorted(maps.Keys(core)) {
			if !yield(name, core[name]) {
				return
			}
		}
		for _, s := range subsystems {
			if !yield(s.prefixes[0], s.entry) {
				return
			}
		}
		for _, fn := range slices.Sorted(maps.Keys(ofFunction)) {
			if !yield(fn, ofFunction[fn]) {
				return
			}
		}
	}
}

// canonical upper-cases a reason name; kernel enum names keep their prefix out.
func canonical(reason string) string {
	return strings.ToUpper(strings.TrimSpace(reason))
}
