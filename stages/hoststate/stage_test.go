package hoststate

import (
	"net/netip"
	"testing"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/stage"
	"github.com/packetmortem/packetmortem/stages/stage/stagetest"
)

// The stage keeps the lifecycle's promises, with datagrams of its flow sent meanwhile.
func TestStageConformance(t *testing.T) {
	pair := testns.NewPair(t, "hc")
	flow := evidence.Flow{Addr: netip.MustParseAddr(testns.ServerV4), Port: testns.Port(), Proto: evidence.UDP}
	stagetest.Conformance(t, pair.Server, func() stage.Stage { return NewStage(Config{Flow: flow}) }, func(t *testing.T) {
		testns.SendDatagrams(t, pair.Client, netip.AddrPortFrom(flow.Addr, flow.Port), 2)
	})
}
