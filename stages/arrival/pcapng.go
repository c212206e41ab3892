package arrival

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"unicode/utf8"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Interfaces returns the names of the interfaces the capture met, by index, for
// WritePcapng, and the namespace of those of another namespace the flow was followed into
// (named NAME@NAMESPACE there). Both are nil until Stop has returned: the reader owns them
// until then.
func (c *Capture) Interfaces() (map[int]string, map[int]uint64) {
	if c == nil {
		return nil, nil
	}
	select {
	case <-c.done:
		return maps.Clone(c.names), maps.Clone(c.hopIndexes)
	default:
		return nil, nil
	}
}

// WritePcapng writes the SLL2 pcap the capture wrote at pcapPath again as pcapng at
// pcapngPath: one interface block per interface (named from names, by the SLL2 header's
// interface index; "if7" for one names lacks), and each packet with its direction in the
// packet flags (inbound, outbound, and how it was received) and comment's text, when not
// empty, as its comment. The packets keep their SLL2 headers. comment, if not nil, gets
// every packet of the file, in order, decoded as the capture decodes it (Time, Iface,
// Direction, tuple, Flags, Length, PktType all as in evidence.Arrival.Packets; Netns from
// netnsOf, by interface index).
//
// An existing pcapngPath is an error unless overwrite; on any error the pcapng file is
// removed.
func WritePcapng(pcapPath, pcapngPath string, overwrite bool, names map[int]string, netnsOf map[int]uint64, comment func(evidence.Packet) string) (err error) {
	in, err := os.Open(pcapPath)
	if err != nil {
		return fmt.Errorf("read pcap: %w", err)
	}
	defer in.Close()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		return fmt.Errorf("read pcap %s: %w", pcapPath, err)
	}
	if r.LinkType() != layers.LinkTypeLinuxSLL2 {
		return fmt.Errorf("read pcap %s: link type %s, want LINUX_SLL2 (a capture of diagnose)", pcapPath, r.LinkType())
	}

	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	out, err := os.OpenFile(pcapngPath, flags, 0o644) // 0644 like the pcap
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create pcapng %s: %w (choose another path or allow overwriting)", pcapngPath, os.ErrExist)
		}
		return fmt.Errorf("create pcapng: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close pcapng %s: %w", pcapngPath, cerr)
		}
		if err != nil {
			os.Remove(pcapngPath)
		}
	}()
	n, err := writePcapng(r, out, names, netnsOf, comment)
	if err != nil {
		return fmt.Errorf("write pcapng %s from %s (packet %d): %w", pcapngPath, pcapPath, n+1, err)
	}
	return nil
}

// writePcapng copies the SLL2 packets of r to w as pcapng and returns how many it wrote.
func writePcapng(r *pcapgo.Reader, w io.Writer, names map[int]string, netnsOf map[int]uint64, comment func(evidence.Packet) string) (int, error) {
	var ng *pcapgo.NgWriter
	ids := map[int]int{} // ifindex -> pcapng interface id
	name := func(ifindex int) string {
		if n, ok := names[ifindex]; ok {
			return n
		}
		return fmt.Sprintf("if%d", ifindex)
	}
	written := 0
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return written, fmt.Errorf("read: %w", err)
		}
		if len(data) < sll2Len {
			return written, fmt.Errorf("%d bytes, shorter than an SLL2 header", len(data))
		}
		p, link := packetOf(data, ci.Length, name)
		p.Time = ci.Timestamp
		p.Netns = netnsOf[link.ifindex]

		id, ok := ids[link.ifindex]
		switch {
		case ok:
		case ng == nil:
			if ng, err = pcapgo.NewNgWriterInterface(w, ngInterface(p.Iface), ngOptions); err != nil {
				return written, err
			}
		default:
			if id, err = ng.AddInterface(ngInterface(p.Iface)); err != nil {
				return written, err
			}
		}
		ids[link.ifindex] = id

		var opts pcapgo.NgPacketOptions
		opts.Flags = &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound, Reception: reception(link.pkttype)}
		if p.Direction == evidence.Out {
			opts.Flags.Direction = pcapgo.NgEpbFlagDirectionOutbound
		}
		if comment != nil {
			if text := optionText(comment(p)); text != "" {
				opts.Comments = []string{text}
			}
		}
		ci.InterfaceIndex = id
		if err := ng.WritePacketWithOptions(ci, data, opts); err != nil {
			return written, err
		}
		written++
	}
	if ng == nil {
		// No packet: still a valid file, with the one interface pcapng requires nothing of.
		var err error
		if ng, err = pcapgo.NewNgWriterInterface(w, ngInterface("any"), ngOptions); err != nil {
			return 0, err
		}
	}
	return written, ng.Flush()
}

// ngOptions is the section header: what wrote the file.
var ngOptions = pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
	Application: "packetmortem diagnose",
	OS:          runtime.GOOS,
	Hardware:    runtime.GOARCH,
}}

func ngInterface(name string) pcapgo.NgInterface {
	return pcapgo.NgInterface{Name: name, LinkType: layers.LinkTypeLinuxSLL2, SnapLength: Snaplen}
}

// packetOf decodes one record of the capture's pcap (an SLL2 header, then the packet from
// its network header) as the capture decoded it; origLen is the record's original length.
func packetOf(rec []byte, origLen int, name func(int) string) (evidence.Packet, linkInfo) {
	link := linkInfo{
		ethertype: binary.BigEndian.Uint16(rec[0:]),
		ifindex:   int(binary.BigEndian.Uint32(rec[4:])),
		hatype:    binary.BigEndian.Uint16(rec[8:]),
		pkttype:   rec[10],
		halen:     rec[11],
		addr:      [8]byte(rec[12:20]),
	}
	h, _ := decode(rec[sll2Len:], link.ethertype)
	return evidence.Packet{
		Iface:     name(link.ifindex),
		Direction: direction(link.pkttype),
		Src:       h.src,
		Dst:       h.dst,
		Flags:     h.flags,
		Length:    max(origLen-sll2Len, len(rec)-sll2Len),
		PktType:   pktTypeName(link.pkttype),
	}, link
}

// reception maps an AF_PACKET packet type to the reception type of the pcapng packet flags.
func reception(pkttype uint8) pcapgo.NgEpbFlag {
	switch pkttype {
	case 0: // PACKET_HOST
		return pcapgo.NgEpbFlagReceptionTypeUnicast
	case 1: // PACKET_BROADCAST
		return pcapgo.NgEpbFlagReceptionTypeBroadcast
	case 2: // PACKET_MULTICAST
		return pcapgo.NgEpbFlagReceptionTypeMulticast
	case 3: // PACKET_OTHERHOST
		return pcapgo.NgEpbFlagReceptionTypePromiscuous
	}
	return pcapgo.NgEpbFlagReceptionTypeNotSpecified
}

// maxOption is the longest option value pcapng can hold (its length is 16 bits).
const maxOption = 0xffff

// optionText cuts a comment to what an option holds, at a character boundary.
func optionText(s string) string {
	if len(s) <= maxOption {
		return s
	}
	const more = "…"
	s = s[:maxOption-len(more)]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + more
}
