package xtables

import "flag"

// record is -record, for the tests of both packages (xtables and xtables_test) in the one
// test binary: record the netlink replies and iptables-nft-save's text of the corpus, and
// the kernel's x_tables answers, into testdata (root).
var record = flag.Bool("record", false, "record the netlink replies and iptables-nft-save's text of the corpus, and the kernel's x_tables answers, into testdata (root)")

// Record is record for package xtables_test.
var Record = record
