package nftrace

import (
	"github.com/google/nftables"
)

// HasChains tells whether the namespace has any nftables base chain, the only place where
// nftables can drop a packet. Without one there is nothing to trace, and the trace table
// would only cost every packet of a host that may already be in trouble.
func HasChains(cfg Config) (bool, error) {
	var opts []nftables.ConnOption
	if cfg.Netns != nil {
		opts = append(opts, nftables.WithNetNSFd(cfg.Netns.Fd()))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return false, classify("open nftables connection", err)
	}
	defer c.CloseLasting()
	chains, err := c.ListChains()
	if err != nil {
		return false, classify("list nftables chains", err)
	}
	for _, ch := range chains {
		if ch.Hooknum != nil {
			return true, nil
		}
	}
	return false, nil
}
