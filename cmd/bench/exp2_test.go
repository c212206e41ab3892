package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/stages/arrival"
	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/kdrop"
	"github.com/packetmortem/packetmortem/stages/nftrace"
	"github.com/packetmortem/packetmortem/stages/path"
)

func TestExp2(t *testing.T) {
	if os.Getenv("EXP2") == "" { t.Skip() }
	l, err := newLab()
	if err != nil { t.Fatal(err) }
	defer l.Close()
	np, _ := openNoPorts(l.server)
	mac, _ := macOf(l.server, iface)
	spec := floodSpec{From: l.client, Src: netip.MustParseAddrPort(clientV4+":5555"), Dst: netip.MustParseAddrPort(serverV4+":9"), Senders: 2, Raw: true, Iface: iface, DstMAC: mac}
	flow := evidence.Flow{Addr: netip.MustParseAddr(serverV4), Port: 7002, Proto: evidence.UDP}
	ctx := context.Background()
	measure := func() float64 {
		f, _ := startFlood(spec)
		time.Sleep(time.Second)
		a, _ := np.Read(); t0 := time.Now(); time.Sleep(4 * time.Second); b, _ := np.Read()
		f.Stop()
		return float64(b-a) / time.Since(t0).Seconds()
	}
	stages := []string{"none", "kdrop", "path", "arrival", "nftrace"}
	for rep := 0; rep < 2; rep++ {
		for _, st := range stages {
			var closer func()
			err := inNetns(l.server, func() error {
				switch st {
				case "kdrop":
					p, err := kdrop.Start(ctx, kdrop.Config{Flow: flow})
					if err != nil { return err }
					closer = func() { p.Close() }
				case "path":
					p, err := path.Start(ctx, path.Config{Flow: flow})
					if err != nil { return err }
					closer = func() { p.Close() }
				case "arrival":
					p, err := arrival.Start(ctx, arrival.Config{Flow: flow})
					if err != nil { return err }
					closer = func() { p.Stop(); p.Close() }
				case "nftrace":
					p, err := nftrace.Start(ctx, nftrace.Config{Flow: flow, NetnsFd: -1})
					if err != nil { return err }
					closer = func() { p.Stop(); p.Close() }
				}
				return nil
			})
			if err != nil { t.Fatal(st, err) }
			r := measure()
			if closer != nil { closer() }
			fmt.Printf("%s %.0fk\n", st, r/1000)
		}
	}
}
