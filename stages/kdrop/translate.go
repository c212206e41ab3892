package kdrop

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/packetmortem/packetmortem/bpf"
	"github.com/packetmortem/packetmortem/stages/evidence"
)

// translationSize is the size of struct translation: a record of the events ring of this
// size is a translation, one of eventSize a drop.
var translationSize = binary.Size(bpf.KdropTranslation{})

// The ends of a connection nat.h may learn (LEARNED_*).
const (
	learnedReplySrc = 1 << iota
	learnedOrigDst
	learnedReplyDst
	learnedOrigSrc
)

// maxTranslations bounds KernelDrop.Translations: a flow of many connections, each
// translated, would otherwise grow the report without limit.
const maxTranslations = 64

// decodeTranslation reads a record of translationSize bytes, in the host's byte order.
func decodeTranslation(raw []byte) (bpf.KdropTranslation, error) {
	var t bpf.KdropTranslation
	err := binary.Read(bytes.NewReader(raw[:translationSize]), binary.NativeEndian, &t)
	return t, err
}

// tupleEnd reads one end of a conntrack tuple; ports are in network byte order there.
func tupleEnd(t *bpf.KdropCtTuple, dst bool) netip.AddrPort {
	addr, port := t.Saddr, t.Sport
	if dst {
		addr, port = t.Daddr, t.Dport
	}
	port = port>>8 | port<<8
	if t.L3num == afInet {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[:4])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(addr), port)
}

const afInet = 2

// translation turns a record into evidence, with the endpoints it made the flow grow by.
func translation(t *bpf.KdropTranslation) (evidence.Translation, []evidence.Endpoint) {
	proto := evidence.TCP
	if t.Orig.Proto == evidence.UDP.Number() {
		proto = evidence.UDP
	}
	tr := evidence.Translation{
		Proto: proto,
		Orig:  evidence.Tuple{Src: tupleEnd(&t.Orig, false), Dst: tupleEnd(&t.Orig, true)},
		Reply: evidence.Tuple{Src: tupleEnd(&t.Reply, false), Dst: tupleEnd(&t.Reply, true)},
		Netns: uint64(t.Netns),
	}
	dnat, snat := tr.Orig.Dst != tr.Reply.Src, tr.Orig.Src != tr.Reply.Dst
	switch {
	case dnat && snat:
		tr.Kind = "DNAT+SNAT"
	case snat:
		tr.Kind = "SNAT"
	default:
		tr.Kind = "DNAT"
	}
	var ends []evidence.Endpoint
	for _, l := range []struct {
		bit uint32
		end netip.AddrPort
	}{
		{learnedReplySrc, tr.Reply.Src}, {learnedOrigDst, tr.Orig.Dst},
		{learnedReplyDst, tr.Reply.Dst}, {learnedOrigSrc, tr.Orig.Src},
	} {
		if t.Learned&l.bit != 0 {
			tr.Learned = append(tr.Learned, l.end)
			ends = append(ends, evidence.Endpoint{Addr: l.end.Addr(), Port: l.end.Port(), Proto: proto})
		}
	}
	return tr, ends
}
