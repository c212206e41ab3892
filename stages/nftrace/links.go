package nftrace

import (
	"strconv"

	"github.com/packetmortem/packetmortem/internal/links"
	"github.com/packetmortem/packetmortem/internal/nft"
)

// dumpLinks maps interface indexes to names from a route socket of the traced namespace
// (trace events carry indexes only).
func dumpLinks(c nft.Executor) (map[uint32]string, error) {
	ifs, err := links.Dump(c)
	if err != nil {
		return nil, err
	}
	names := map[uint32]string{}
	for _, l := range ifs {
		names[uint32(l.Index)] = l.Name
	}
	return names, nil
}

// ifaceName names an interface index, or says it is unknown.
func ifaceName(links map[uint32]string, index uint32) string {
	if n, ok := links[index]; ok {
		return n
	}
	return "ifindex " + strconv.FormatUint(uint64(index), 10)
}
