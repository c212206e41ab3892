package arrival

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// sll2Len is the size of a LINKTYPE_LINUX_SLL2 header.
const sll2Len = 20

// linkInfo is what the packet socket reports about a packet's link: the fields of an SLL2
// header.
type linkInfo struct {
	ethertype uint16 // host order
	ifindex   int
	hatype    uint16
	pkttype   uint8
	halen     uint8
	addr      [8]byte
}

// putSLL2 writes the LINKTYPE_LINUX_SLL2 header (https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html)
// into b[:20]: protocol, reserved, interface index, ARPHRD type, packet type, address length,
// address, all big-endian.
func putSLL2(b []byte, l linkInfo) {
	_ = b[sll2Len-1]
	binary.BigEndian.PutUint16(b[0:], l.ethertype)
	binary.BigEndian.PutUint16(b[2:], 0)
	binary.BigEndian.PutUint32(b[4:], uint32(l.ifindex))
	binary.BigEndian.PutUint16(b[8:], l.hatype)
	b[10] = l.pkttype
	b[11] = l.halen
	copy(b[12:20], l.addr[:])
}

// pcapFile writes the flow's packets with their SLL2 headers, so Wireshark shows the
// interface and direction of each.
type pcapFile struct {
	path string
	f    *os.File
	buf  *bufio.Writer
	w    *pcapgo.Writer
	rec  []byte
	err  error // first write error; writing stops there
}

// createPcap creates path, refusing to replace an existing file unless overwrite.
func createPcap(path string, overwrite bool) (*pcapFile, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	// 0644 like tcpdump -w: the user who ran diagnose with sudo can open it in Wireshark.
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create pcap %s: %w (choose another path or allow overwriting)", path, os.ErrExist)
		}
		return nil, fmt.Errorf("create pcap: %w", err)
	}
	p := &pcapFile{path: path, f: f, buf: bufio.NewWriterSize(f, 1<<16), rec: make([]byte, sll2Len+kernelSnap)}
	p.w = pcapgo.NewWriterNanos(p.buf)
	if err := p.w.WriteFileHeader(Snaplen, layers.LinkTypeLinuxSLL2); err != nil {
		p.discard()
		return nil, fmt.Errorf("write pcap header to %s: %w", path, err)
	}
	return p, nil
}

// write records one packet: data from the network header, origLen its length on the wire.
func (p *pcapFile) write(t time.Time, l linkInfo, data []byte, origLen int) {
	if p.err != nil {
		return
	}
	putSLL2(p.rec, l)
	n := copy(p.rec[sll2Len:], data)
	ci := gopacket.CaptureInfo{
		Timestamp:      t,
		CaptureLength:  sll2Len + n,
		Length:         sll2Len + max(origLen, n),
		InterfaceIndex: l.ifindex,
	}
	if err := p.w.WritePacket(ci, p.rec[:sll2Len+n]); err != nil {
		p.err = fmt.Errorf("write pcap %s: %w", p.path, err)
	}
}

// close flushes and closes the file, returning the first error met while writing.
func (p *pcapFile) close() error {
	if p.f == nil {
		return p.err
	}
	if err := p.buf.Flush(); err != nil && p.err == nil {
		p.err = fmt.Errorf("write pcap %s: %w", p.path, err)
	}
	if err := p.f.Close(); err != nil && p.err == nil {
		p.err = fmt.Errorf("close pcap %s: %w", p.path, err)
	}
	p.f = nil
	return p.err
}

// discard closes and removes a file Start created but could not use.
func (p *pcapFile) discard() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
		os.Remove(p.path)
	}
}
