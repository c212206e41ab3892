package arrival

import (
	"bytes"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	ap := netip.AddrPortFrom
	syn := tcpSeg(peerPort, flowPort, flagSYN)
	for _, c := range []struct {
		name      string
		data      []byte
		ethertype uint16
		want      headers
	}{
		{"v4 syn", ipv4(peerV4, flowV4, ipTCP, v4opts{}, syn), ethPIPv4,
			headers{src: ap(peerV4, peerPort), dst: ap(flowV4, flowPort), proto: ipTCP, flags: "S"}},
		{"v4 rst-ack with options", ipv4(flowV4, peerV4, ipTCP, v4opts{options: []byte{0x94, 4, 0, 0}}, tcpSeg(flowPort, peerPort, flagRST|flagACK)), ethPIPv4,
			headers{src: ap(flowV4, flowPort), dst: ap(peerV4, peerPort), proto: ipTCP, flags: "R."}},
		{"v4 udp", ipv4(peerV4, flowV4, ipUDP, v4opts{}, udpDgram(peerPort, flowPort, 'x')), ethPIPv4,
			headers{src: ap(peerV4, peerPort), dst: ap(flowV4, flowPort), proto: ipUDP, flags: ""}},
		// gopacket stops at fragments: these come from the raw path.
		{"v4 first fragment", ipv4(peerV4, flowV4, ipTCP, v4opts{frag: 0x2000}, tcpSeg(peerPort, flowPort, flagPSH|flagACK)), ethPIPv4,
			headers{src: ap(peerV4, peerPort), dst: ap(flowV4, flowPort), proto: ipTCP, flags: "P."}},
		{"v4 only ports", ipv4(peerV4, flowV4, ipTCP, v4opts{}, syn[:4]), ethPIPv4,
			headers{src: ap(peerV4, peerPort), dst: ap(flowV4, flowPort), proto: ipTCP, flags: "?"}},
		{"v6 syn-ack", ipv6(flowV6, peerV6, ipTCP, nil, tcpSeg(flowPort, peerPort, flagSYN|flagACK)), ethPIPv6,
			headers{src: ap(flowV6, flowPort), dst: ap(peerV6, peerPort), proto: ipTCP, flags: "S."}},
		{"v6 fin-ack behind hop-by-hop", ipv6(flowV6, peerV6, ipv6HopByHop, extHdr(ipTCP, 0), tcpSeg(flowPort, peerPort, flagFIN|flagACK)), ethPIPv6,
			headers{src: ap(flowV6, flowPort), dst: ap(peerV6, peerPort), proto: ipTCP, flags: "F."}},
		{"v6 first fragment udp", ipv6(peerV6, flowV6, ipv6Fragment, fragHdr(ipUDP, 0, true), udpDgram(peerPort, flowPort, 1, 2, 3)), ethPIPv6,
			headers{src: ap(peerV6, peerPort), dst: ap(flowV6, flowPort), proto: ipUDP, flags: ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := decode(c.data, c.ethertype)
			if !ok || got != c.want {
				t.Errorf("decode = %+v, %v; want %+v", got, ok, c.want)
			}
			// The raw path, used where gopacket refuses, reads the same fields.
			if raw, ok := decodeRaw(c.data, c.ethertype); !ok || raw.src != c.want.src || raw.dst != c.want.dst || raw.proto != c.want.proto {
				t.Errorf("decodeRaw = %+v, %v; want %+v", raw, ok, c.want)
			}
		})
	}
	if _, ok := decode([]byte{0x45, 0}, ethPIPv4); ok {
		t.Error("decode of 2 bytes succeeded")
	}
}

func TestFormatFlags(t *testing.T) {
	t.Parallel()
	for f, want := range map[uint16]string{
		flagSYN:                     "S",
		flagSYN | flagACK:           "S.",
		flagPSH | flagACK:           "P.",
		flagFIN | flagACK:           "F.",
		flagRST:                     "R",
		flagRST | flagACK:           "R.",
		flagACK:                     ".",
		flagFIN | flagPSH | flagACK: "FP.",
		flagSYN | flagECE | flagCWR: "SEW",
		flagACK | flagURG:           ".U",
		flagACK | flagAE:            ".e",
		0:                           "none",
		0x1ff:                       "FSRP.UEWe",
		flagSYN | flagACK | flagECE: "S.E",
		flagFIN | flagSYN | flagRST: "FSR",
		flagPSH | flagACK | flagURG: "P.U",
		flagRST | flagPSH | flagACK: "RP.",
		flagFIN | flagPSH | flagAE:  "FPe",
		flagSYN | flagACK | flagCWR: "S.W",
		flagSYN | flagECE | flagAE:  "SEe",
		flagPSH:                     "P",
		flagFIN:                     "F",
		flagURG:                     "U",
		flagECE | flagCWR:           "EW",
	} {
		if got := formatFlags(f); got != want {
			t.Errorf("formatFlags(%#x) = %q, want %q", f, got, want)
		}
	}
}

func TestSLL2Header(t *testing.T) {
	t.Parallel()
	l := linkInfo{ethertype: ethPIPv6, ifindex: 0x01020304, hatype: 772, pkttype: unix.PACKET_OUTGOING, halen: 6,
		addr: [8]byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}}
	b := make([]byte, sll2Len)
	putSLL2(b, l)
	want := []byte{
		0x86, 0xdd, // protocol
		0, 0, // reserved
		1, 2, 3, 4, // interface index
		0x03, 0x04, // ARPHRD_LOOPBACK
		4,                                        // PACKET_OUTGOING
		6,                                        // address length
		0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0, 0, // address
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("SLL2 header\n got %x\nwant %x", b, want)
	}
	// gopacket's decoder reads the same fields back.
	pkt := append(b, ipv6(peerV6, flowV6, ipTCP, nil, tcpSeg(peerPort, flowPort, flagSYN))...)
	p := gopacket.NewPacket(pkt, layers.LayerTypeLinuxSLL2, gopacket.Default)
	s, ok := p.Layer(layers.LayerTypeLinuxSLL2).(*layers.LinuxSLL2)
	if !ok {
		t.Fatalf("gopacket does not decode the header: %v", p.ErrorLayer())
	}
	if s.ProtocolType != layers.EthernetTypeIPv6 || s.InterfaceIndex != 0x01020304 || s.ARPHardwareType != 772 ||
		s.PacketType != layers.LinuxSLL2PacketTypeOutgoing || !bytes.Equal(s.Addr, l.addr[:6]) {
		t.Errorf("gopacket reads %+v", s)
	}
	if p.Layer(layers.LayerTypeTCP) == nil {
		t.Error("gopacket finds no TCP after the header")
	}
}

func TestPktType(t *testing.T) {
	t.Parallel()
	for typ, want := range map[uint8]string{0: "host", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "outgoing", 5: "loopback", 9: "type9"} {
		if got := pktTypeName(typ); got != want {
			t.Errorf("pktTypeName(%d) = %q, want %q", typ, got, want)
		}
	}
	if direction(unix.PACKET_OUTGOING) != evidence.Out || direction(unix.PACKET_HOST) != evidence.In || direction(unix.PACKET_OTHERHOST) != evidence.In {
		t.Error("direction: want out for PACKET_OUTGOING only")
	}
}

// TestPcapFlagsAgainstTcpdump writes crafted segments to a pcap file and has tcpdump print
// them: its flags and ours must agree, and it must read the SLL2 headers.
func TestPcapFlagsAgainstTcpdump(t *testing.T) {
	t.Parallel()
	tcpdump := testns.Tool(t, "tcpdump")
	path := filepath.Join(t.TempDir(), "flags.pcap")
	p, err := createPcap(path, false)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	// The eight flags of byte 13 only: tcpdump prints the AE bit as "e" from 4.99.5 on,
	// older ones (4.99.3 in Debian 12) ignore it.
	for f := uint16(0); f < 0x100; f += 3 {
		data := ipv4(peerV4, flowV4, ipTCP, v4opts{}, tcpSeg(peerPort, flowPort, f))
		p.write(time.Unix(1700000000, int64(f)), linkInfo{ethertype: ethPIPv4, ifindex: 2, hatype: 1, halen: 6}, data, len(data))
		want = append(want, formatFlags(f))
	}
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := createPcap(path, false); err == nil {
		t.Error("createPcap replaced an existing file")
	}
	out, err := exec.Command(tcpdump, "-nn", "-r", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`Flags \[([^\]]*)\]`)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			got = append(got, m[1])
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tcpdump flags\n got %q\nwant %q\n%s", got, want, out)
	}
	if !strings.Contains(string(out), "198.51.100.1.40000 > 198.51.100.2.8080") {
		t.Errorf("tcpdump does not read the addresses:\n%s", out)
	}
}
