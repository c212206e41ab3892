package main

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestExp(t *testing.T) {
	if os.Getenv("EXP") == "" {
		t.Skip()
	}
	l, err := newLab()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	np, _ := openNoPorts(l.server)
	mac, err := macOf(l.server, iface)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := strconv.Atoi(os.Getenv("SENDERS"))
	spec := floodSpec{From: l.client, Src: netip.MustParseAddrPort(clientV4 + ":5555"), Dst: netip.MustParseAddrPort(serverV4 + ":9"), Senders: k, Raw: os.Getenv("EXP") == "raw", Iface: iface, DstMAC: mac}
	var p *proc
	if os.Getenv("DIAG") != "" {
		hold, _ := helperCommand("stamp", "10m")
		p, err = startProc("diagnose", l.server, append([]string{"/tmp/exp/diagnose", "--flow", serverV4 + ":7002", "--proto", "udp", "--yes", "--format", "json", "-o", "/tmp/exp/s.json", "--force", "--timeout", "5m", "--"}, hold...), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.stop(30 * time.Second)
		if _, err := p.stamp(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	f, err := startFlood(spec)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY")
	n, _ := strconv.Atoi(os.Getenv("SECS"))
	for i := 0; i < n; i++ {
		a, _ := np.Read()
		s0 := f.sent.Load()
		time.Sleep(time.Second)
		b, _ := np.Read()
		fmt.Println("rate", b-a, "sent", f.sent.Load()-s0)
	}
	fmt.Println(f.Stop())
}
