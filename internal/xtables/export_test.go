package xtables

import "flag"

// record is -record, for the tests of both packages (xtables and xtables_test) in the one
// test binary: record the netlink replies and iptables-nft-save's text of the corpus, and
// the kernel's x_tables answers, into testdata (root).
var record = flag.Bool("record", false, "record the netlink replies and iptables-nft-save's text of the corpus, and the kernel's x_tables answers, into testdata (root)")

// Record is record for package xtables_test.
var Record = record

// ReadRawLegacy is the kernel's answers to GET_INFO and GET_ENTRIES for table, in the
// calling thread's namespace, for recordings.
func ReadRawLegacy(family uint8, table string) (info, entries []byte, err error) {
	l, err := layoutOf(family)
	if err != nil {
		return nil, nil, err
	}
	return readRaw(l, table)
}

// ParseLegacy parses a recording of ReadRawLegacy as ReadLegacy parses the kernel's.
func ParseLegacy(family uint8, table string, info, entries []byte) (*Table, error) {
	l, err := layoutOf(family)
	if err != nil {
		return nil, err
	}
	return parseLegacy(l, table, info, entries)
}
