package arrival

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// record is one packet the capture wrote: what the packet socket reported and the bytes.
type record struct {
	t    time.Time
	link linkInfo
	data []byte
}

// crafted is a capture of three packets on two interfaces: a SYN in on veth0 (index 2), its
// SYN-ACK out, and a broadcast UDP datagram in on index 9, which the names do not know.
func crafted() ([]record, map[int]string) {
	t0 := time.Unix(1_800_000_000, 123456789)
	in := linkInfo{ethertype: ethPIPv4, ifindex: 2, hatype: 1, pkttype: 0, halen: 6, addr: [8]byte{2, 0, 0, 0, 0, 1}}
	out := in
	out.pkttype = packetOutgoing
	bcast := linkInfo{ethertype: ethPIPv6, ifindex: 9, hatype: 1, pkttype: 1, halen: 6}
	return []record{
		{t0, in, ipv4(peerV4, flowV4, ipTCP, v4opts{}, tcpSeg(peerPort, flowPort, flagSYN))},
		{t0.Add(35 * time.Microsecond), out, ipv4(flowV4, peerV4, ipTCP, v4opts{}, tcpSeg(flowPort, peerPort, flagSYN|flagACK))},
		{t0.Add(time.Second), bcast, ipv6(peerV6, flowV6, ipUDP, nil, udpDgram(peerPort, flowPort, 'h', 'i'))},
	}, map[int]string{1: "lo", 2: "veth0"}
}

// writeSLL2 writes records with the capture's own pcap writer.
func writeSLL2(t *testing.T, path string, recs []record) {
	t.Helper()
	p, err := createPcap(path, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		p.write(r.t, r.link, r.data, len(r.data))
	}
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
}

// writeCrafted writes the crafted capture and its pcapng, with comments naming each packet
// as the comment function saw it; it returns the pcapng's path and the packets seen.
func writeCrafted(t *testing.T) (string, []evidence.Packet) {
	t.Helper()
	recs, names := crafted()
	dir := t.TempDir()
	pcap, pcapng := filepath.Join(dir, "r.pcap"), filepath.Join(dir, "r.pcapng")
	writeSLL2(t, pcap, recs)
	var seen []evidence.Packet
	err := WritePcapng(pcap, pcapng, false, names, nil, func(p evidence.Packet) string {
		seen = append(seen, p)
		return commentOf(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	return pcapng, seen
}

// commentOf gives the crafted packets comments of different lengths (padding) and a
// non-ASCII character; the datagram gets none.
func commentOf(p evidence.Packet) string {
	if p.Flags == "" {
		return ""
	}
	return fmt.Sprintf("%s on %s: %s → %s %s", p.Direction, p.Iface, p.Src, p.Dst, p.Flags)
}

func TestWritePcapngDecodes(t *testing.T) {
	checkFDs(t)
	recs, _ := crafted()
	_, seen := writeCrafted(t)
	want := []evidence.Packet{
		{Time: recs[0].t, Iface: "veth0", Direction: evidence.In, Src: netip.AddrPortFrom(peerV4, peerPort), Dst: netip.AddrPortFrom(flowV4, flowPort), Flags: "S", Length: 40, PktType: "host"},
		{Time: recs[1].t, Iface: "veth0", Direction: evidence.Out, Src: netip.AddrPortFrom(flowV4, flowPort), Dst: netip.AddrPortFrom(peerV4, peerPort), Flags: "S.", Length: 40, PktType: "outgoing"},
		{Time: recs[2].t, Iface: "if9", Direction: evidence.In, Src: netip.AddrPortFrom(peerV6, peerPort), Dst: netip.AddrPortFrom(flowV6, flowPort), Length: 50, PktType: "broadcast"},
	}
	if len(seen) != len(want) {
		t.Fatalf("comment saw %d packets, want %d: %+v", len(seen), len(want), seen)
	}
	for i := range want {
		if g, w := seen[i], want[i]; !g.Time.Equal(w.Time) || g.Iface != w.Iface || g.Direction != w.Direction || g.Src != w.Src ||
			g.Dst != w.Dst || g.Flags != w.Flags || g.Length != w.Length || g.PktType != w.PktType {
			t.Errorf("packet %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// block is one pcapng block as the file holds it.
type block struct {
	typ  uint32
	body []byte // between the leading length and the trailing one
}

// blocks splits a little-endian pcapng file into blocks, checking the framing: lengths are
// multiples of 4 and repeated at the end.
func blocks(t *testing.T, b []byte) []block {
	t.Helper()
	var out []block
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d bytes left, shorter than a block", len(b))
		}
		typ, n := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if n%4 != 0 || n < 12 || int(n) > len(b) {
			t.Fatalf("block type %#x: length %d (of %d bytes left)", typ, n, len(b))
		}
		if trail := binary.LittleEndian.Uint32(b[n-4:]); trail != n {
			t.Fatalf("block type %#x: length %d, trailing length %d", typ, n, trail)
		}
		out = append(out, block{typ, b[8 : n-4]})
		b = b[n:]
	}
	return out
}

// options parses the options of a block (from their start), checking the padding and the
// end-of-options option.
func options(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	opts := map[uint16][]byte{}
	for {
		if len(b) < 4 {
			t.Fatalf("options end without opt_endofopt")
		}
		code, n := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		if code == 0 {
			if n != 0 || len(b) != 4 {
				t.Fatalf("opt_endofopt of length %d, %d bytes after it", n, len(b)-4)
			}
			return opts
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(b) {
			t.Fatalf("option %d: length %d, %d bytes left", code, n, len(b)-4)
		}
		if pad := b[4+n : 4+padded]; !bytes.Equal(pad, make([]byte, len(pad))) {
			t.Errorf("option %d: padding %x is not zero", code, pad)
		}
		opts[code] = b[4 : 4+n]
		b = b[4+padded:]
	}
}

// TestPcapngBlocks reads the file's bytes: section header, one interface block per
// interface before its first packet, enhanced packet blocks with the SLL2 record, the
// comment (option 1) and the flags (option 2).
func TestPcapngBlocks(t *testing.T) {
	checkFDs(t)
	recs, _ := crafted()
	path, seen := writeCrafted(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const (
		shb, idb, epb       = 0x0A0D0D0A, 1, 6
		optComment, optFlag = 1, 2
		optIfName           = 2
	)
	bs := blocks(t, b)
	var types []uint32
	for _, bl := range bs {
		types = append(types, bl.typ)
	}
	if want := []uint32{shb, idb, epb, epb, idb, epb}; !slices.Equal(types, want) {
		t.Fatalf("block types %x, want %x", types, want)
	}
	if s := bs[0].body; binary.LittleEndian.Uint32(s) != 0x1A2B3C4D || binary.LittleEndian.Uint16(s[4:]) != 1 || binary.LittleEndian.Uint16(s[6:]) != 0 {
		t.Errorf("section header %x: want byte-order magic 1a2b3c4d, version 1.0", s[:8])
	}
	for i, name := range map[int]string{1: "veth0", 4: "if9"} {
		body := bs[i].body
		if lt, snap := binary.LittleEndian.Uint16(body), binary.LittleEndian.Uint32(body[4:]); lt != 276 || snap != Snaplen {
			t.Errorf("interface %s: link type %d snaplen %d, want 276 (LINUX_SLL2) and %d", name, lt, snap, Snaplen)
		}
		if got := string(options(t, body[8:])[optIfName]); got != name {
			t.Errorf("interface block %d: if_name %q, want %q", i, got, name)
		}
	}
	wantFlags := []uint32{0b00101, 0b00010, 0b01101} // inbound unicast, outbound, inbound broadcast
	for k, i := range []int{2, 3, 5} {
		body := bs[i].body
		iface, ts := binary.LittleEndian.Uint32(body), uint64(binary.LittleEndian.Uint32(body[4:]))<<32|uint64(binary.LittleEndian.Uint32(body[8:]))
		caplen, origlen := binary.LittleEndian.Uint32(body[12:]), binary.LittleEndian.Uint32(body[16:])
		if want := uint32(k / 2); iface != want {
			t.Errorf("packet %d: interface %d, want %d", k, iface, want)
		}
		if ts != uint64(recs[k].t.UnixNano()) {
			t.Errorf("packet %d: timestamp %d, want %d (ns)", k, ts, recs[k].t.UnixNano())
		}
		n := sll2Len + len(recs[k].data)
		if int(caplen) != n || int(origlen) != n {
			t.Errorf("packet %d: lengths %d/%d, want %d", k, caplen, origlen, n)
		}
		data := body[20 : 20+caplen]
		var sll [sll2Len]byte
		putSLL2(sll[:], recs[k].link)
		if !bytes.Equal(data[:sll2Len], sll[:]) || !bytes.Equal(data[sll2Len:], recs[k].data) {
			t.Errorf("packet %d: data %x, want the SLL2 header %x and the packet", k, data, sll)
		}
		opts := options(t, body[20+(caplen+3)&^3:])
		if got, want := string(opts[optComment]), commentOf(seen[k]); got != want {
			t.Errorf("packet %d: comment %q, want %q", k, got, want)
		}
		if _, ok := opts[optComment]; ok == (commentOf(seen[k]) == "") {
			t.Errorf("packet %d: comment option present %v, want it only for a comment", k, ok)
		}
		if f := opts[optFlag]; len(f) != 4 || binary.LittleEndian.Uint32(f) != wantFlags[k] {
			t.Errorf("packet %d: flags %x, want %05b", k, f, wantFlags[k])
		}
	}
}

// TestPcapngNgReader reads the file back with gopacket's reader.
func TestPcapngNgReader(t *testing.T) {
	checkFDs(t)
	recs, _ := crafted()
	path, seen := writeCrafted(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dirs := []pcapgo.NgEpbFlag{pcapgo.NgEpbFlagDirectionInbound, pcapgo.NgEpbFlagDirectionOutbound, pcapgo.NgEpbFlagDirectionInbound}
	for k := range recs {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if err != nil {
			t.Fatalf("packet %d: %v", k, err)
		}
		intf, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatalf("packet %d: %v", k, err)
		}
		wantName := map[bool]string{true: "veth0", false: "if9"}[k < 2]
		if intf.Name != wantName || intf.LinkType != layers.LinkTypeLinuxSLL2 {
			t.Errorf("packet %d: interface %q link type %s, want %q LINUX_SLL2", k, intf.Name, intf.LinkType, wantName)
		}
		if !ci.Timestamp.Equal(recs[k].t) || !bytes.Equal(data[sll2Len:], recs[k].data) {
			t.Errorf("packet %d: %s %x, want %s %x", k, ci.Timestamp, data[sll2Len:], recs[k].t, recs[k].data)
		}
		var want []string
		if c := commentOf(seen[k]); c != "" {
			want = []string{c}
		}
		if !slices.Equal(opts.Comments, want) {
			t.Errorf("packet %d: comments %q, want %q", k, opts.Comments, want)
		}
		if opts.Flags == nil || opts.Flags.Direction != dirs[k] {
			t.Errorf("packet %d: flags %+v, want direction %b", k, opts.Flags, dirs[k])
		}
	}
	if _, _, err := r.ReadPacketData(); err == nil {
		t.Error("a fourth packet")
	}
	if r.NInterfaces() != 2 {
		t.Errorf("%d interfaces, want 2", r.NInterfaces())
	}
}

// TestPcapngTshark has Wireshark's reader print each packet's interface, direction, SLL2
// packet type and comment.
func TestPcapngTshark(t *testing.T) {
	checkFDs(t)
	tshark := testns.Tool(t, "tshark")
	path, seen := writeCrafted(t)
	cmd := exec.Command(tshark, "-r", path, "-T", "fields", "-E", "separator=|",
		"-e", "frame.interface_name", "-e", "frame.packet_flags_direction", "-e", "sll.pkttype", "-e", "frame.comment")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s", err, stderr.Bytes())
	}
	want := []string{
		"veth0|0x00000001|0|" + commentOf(seen[0]),
		"veth0|0x00000002|4|" + commentOf(seen[1]),
		"if9|0x00000001|1|",
	}
	if got := strings.Split(strings.TrimRight(string(out), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("tshark:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPcapngExisting(t *testing.T) {
	checkFDs(t)
	recs, names := crafted()
	dir := t.TempDir()
	pcap, pcapng := filepath.Join(dir, "r.pcap"), filepath.Join(dir, "r.pcapng")
	writeSLL2(t, pcap, recs)
	if err := os.WriteFile(pcapng, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WritePcapng(pcap, pcapng, false, names, nil, nil)
	if !errors.Is(err, os.ErrExist) || !strings.Contains(err.Error(), "allow overwriting") {
		t.Errorf("over an existing file: %v, want os.ErrExist", err)
	}
	if b, _ := os.ReadFile(pcapng); string(b) != "keep me" {
		t.Errorf("the existing file became %q", b)
	}
	if err := WritePcapng(pcap, pcapng, true, names, nil, nil); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if b, _ := os.ReadFile(pcapng); len(blocks(t, b)) != 6 {
		t.Errorf("overwritten file: %d blocks, want 6", len(blocks(t, b)))
	}
}

func TestPcapngErrors(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.pcapng")
	if err := WritePcapng(filepath.Join(dir, "none.pcap"), out, false, nil, nil, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing pcap: %v", err)
	}

	// Not the capture's link type.
	eth := filepath.Join(dir, "eth.pcap")
	f, err := os.Create(eth)
	if err != nil {
		t.Fatal(err)
	}
	if err := pcapgo.NewWriter(f).WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := WritePcapng(eth, out, false, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "LINUX_SLL2") {
		t.Errorf("Ethernet pcap: %v", err)
	}

	// Cut in the middle of a record: an error, and no pcapng left behind.
	recs, names := crafted()
	cut := filepath.Join(dir, "cut.pcap")
	writeSLL2(t, cut, recs)
	st, err := os.Stat(cut)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cut, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	if err := WritePcapng(cut, out, false, names, nil, nil); err == nil || !strings.Contains(err.Error(), "packet 3") {
		t.Errorf("cut pcap: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed write left %s: %v", out, err)
	}
}

// TestPcapngEmpty: a capture without packets still makes a file readers open.
func TestPcapngEmpty(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	pcap, pcapng := filepath.Join(dir, "e.pcap"), filepath.Join(dir, "e.pcapng")
	writeSLL2(t, pcap, nil)
	if err := WritePcapng(pcap, pcapng, false, nil, nil, func(evidence.Packet) string { t.Error("comment called"); return "" }); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pcapng)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ReadPacketData(); err == nil {
		t.Error("a packet in an empty capture")
	}
}

func TestOptionText(t *testing.T) {
	t.Parallel()
	if got := optionText("short"); got != "short" {
		t.Errorf("short: %q", got)
	}
	long := strings.Repeat("é", maxOption) // 2 bytes each
	got := optionText(long)
	if len(got) > maxOption || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("long: %d bytes, valid %v, suffix %q", len(got), utf8.ValidString(got), got[len(got)-3:])
	}
}

func TestInterfaces(t *testing.T) {
	t.Parallel()
	c := &Capture{done: make(chan struct{}), names: map[int]string{1: "lo", 2: "veth0"}}
	if got, _ := c.Interfaces(); got != nil {
		t.Errorf("while capturing: %v, want nil", got)
	}
	close(c.done)
	got, _ := c.Interfaces()
	got[3] = "x"
	if len(c.names) != 2 || got[2] != "veth0" {
		t.Errorf("after the reader ended: %v (capture's own: %v)", got, c.names)
	}
	if names, _ := (*Capture)(nil).Interfaces(); names != nil {
		t.Error("nil capture")
	}
}
