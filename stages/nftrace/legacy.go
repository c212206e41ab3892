package nftrace

import (
	"cmp"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/netns"
	"github.com/packetmortem/packetmortem/internal/nft"
	"github.com/packetmortem/packetmortem/internal/xtables"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// iptables-legacy keeps its rules in x_tables, where the nftables trace does not reach: a
// host whose firewall is written with iptables-legacy (older distributions, many
// Kubernetes nodes) would drop the flow with NETFILTER_DROP and no rule named. Its tables
// are read when the stage arms and when it stops; the rules that could have dropped the
// flow and counted packets meanwhile are the evidence.

// legacyHooks are the hooks a legacy rule may be judged at, in a packet's order.
var legacyHooks = []string{"prerouting", "input", "forward", "output", "postrouting"}

// readLegacy reads every iptables-legacy table of the namespace (h nil: this one).
func readLegacy(h *netns.Handle) ([]*xtables.Table, error) {
	var tables []*xtables.Table
	read := func() (err error) {
		if tables, err = xtables.ReadAllLegacy(); err != nil || len(tables) == 0 {
			return err
		}
		// The names of the ipsets set matches refer to by index: best effort, a rule
		// without them says so.
		sock, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		defer unix.Close(sock)
		for _, t := range tables {
			_ = xtables.ResolveSets(t, sock)
		}
		return nil
	}
	var err error
	if h == nil {
		err = read()
	} else {
		err = h.Do(read)
	}
	return tables, err
}

// legacyEvidence says what iptables-legacy held and which of its rules could have dropped
// the flow's packets, at which hooks, by how much their counters grew between before and
// after. ends are the flow's endpoints (its own and those translations taught): a rule is
// judged against packets toward each and from each.
func legacyEvidence(before, after []*xtables.Table, ends evidence.Endpoints, alsoNft bool) *evidence.Legacy {
	if len(after) == 0 {
		return nil
	}
	l := &evidence.Legacy{Tables: []string{}, AlsoNftables: alsoNft && xtables.LegacyInUse(after)}
	for _, t := range after {
		l.Tables = append(l.Tables, nft.FamilyName(t.Family)+" "+t.Name)
		for _, c := range t.Chains {
			l.Rules += len(c.Rules)
			if c.Policy != "" && c.Policy != "ACCEPT" {
				l.Policies++
			}
		}
	}
	grown := xtables.GrownAll(before, after)
	type key struct {
		family       uint8
		table, chain string
		num          int
	}
	found := map[key]int{} // index in l.Grown
	for _, hook := range legacyHooks {
		for _, p := range legacyPackets(ends) {
			for _, c := range xtables.Candidates(after, grown, hook, p) {
				k := key{c.Family, c.Table, c.Chain, c.Num}
				i, ok := found[k]
				if !ok {
					i = len(l.Grown)
					found[k] = i
					l.Grown = append(l.Grown, evidence.LegacyRule{Step: legacyStep(c), Hooks: []string{}, Packets: c.Packets, MatchesFlow: true})
				}
				if !slices.Contains(l.Grown[i].Hooks, hook) {
					l.Grown[i].Hooks = append(l.Grown[i].Hooks, hook)
				}
			}
		}
	}
	return l
}

// legacyPackets are the flow's packets as Candidates judges them: toward each endpoint
// and from it, with what is known (address, port, protocol).
func legacyPackets(ends evidence.Endpoints) []xtables.Packet {
	var ps []xtables.Packet
	for _, e := range ends {
		addr := e.Addr.Unmap()
		proto := uint8(e.Proto.Number())
		ps = append(ps,
			xtables.Packet{Dst: addr, DstPort: e.Port, Proto: proto},
			xtables.Packet{Src: addr, SrcPort: e.Port, Proto: proto})
	}
	return ps
}

// legacyStep is a candidate as a trace would have named it.
func legacyStep(c xtables.RuleRef) evidence.TraceStep {
	// A policy has no text, but its Syntax still says whose tool changes it.
	st := evidence.TraceStep{Type: "rule", Family: nft.FamilyName(c.Family), Table: c.Table, Chain: c.Chain,
		Syntax: nft.IptablesTool(c.Family), Backend: "legacy", Verdict: "drop"}
	if c.Policy() {
		st.Type = "policy"
		return st
	}
	st.Rule, st.Partial = c.Rule.Save(c.Chain, c.Family)
	st.Number = c.Num
	switch {
	case c.Rule.Target.Name == "REJECT":
		st.Reject = evidence.RejectICMP
		if xtables.RejectsWithReset(c.Family, c.Rule.Target) {
			st.Reject = evidence.RejectTCPReset
		}
	case c.Rule.Target.Name == "" && c.Rule.Verdict != "DROP":
		// A jump into a chain whose own rule did not count: named as the jump.
		st.Verdict = "jump " + c.Rule.Verdict
		if c.Rule.Goto {
			st.Verdict = "goto " + c.Rule.Verdict
		}
	}
	return st
}

// stopLegacy reads iptables-legacy's tables again and puts what they say into fw.
func (s *Stage) stopLegacy(fw *evidence.Firewall) {
	fw.Legacy = legacyStopped(s.cfg.Netns, s.legacy, s.legacyErr, s.ends, s.hasChains)
}

// legacyStopped reads the iptables-legacy tables of namespace h again and says what they
// held and which rules could have dropped the flow; before and beforeErr are the first
// read's.
func legacyStopped(h *netns.Handle, before []*xtables.Table, beforeErr error, ends evidence.Endpoints, alsoNft bool) *evidence.Legacy {
	after, err := readLegacy(h)
	if err = cmp.Or(beforeErr, err); err != nil {
		return &evidence.Legacy{Tables: []string{}, Error: fmt.Sprintf("read the iptables-legacy tables: %v", err)}
	}
	return legacyEvidence(before, after, ends, alsoNft)
}
