package links

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// loadMessages reads netlink messages the host state's end-to-end tests recorded.
func loadMessages(t testing.TB, name string) []netlink.Message {
	return testns.NetlinkMessages(t, "../../stages/hoststate/testdata/"+name+".hex")
}

func TestDecodeLinks(t *testing.T) {
	t.Parallel()
	ifs, err := DecodeAll(loadMessages(t, "links"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range ifs {
		got = append(got, l.Name)
		if len(l.XDP) != 0 {
			t.Errorf("%s has XDP programs %+v, none were attached", l.Name, l.XDP)
		}
	}
	if strings.Join(got, " ") != "lo veth0 veth1p veth1" {
		t.Errorf("interfaces %q, want lo veth0 veth1p veth1 (by index)", got)
	}
	if lo, veth := ifs[0], ifs[1]; lo.Type != unix.ARPHRD_LOOPBACK || lo.Flags&unix.IFF_UP == 0 || veth.Type != unix.ARPHRD_ETHER || veth.Index != 2 {
		t.Errorf("lo %+v, veth0 %+v: want loopback up, ethernet index 2", lo, veth)
	}

	ifs, err = DecodeAll(loadMessages(t, "links_programs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 2 || ifs[1].Name != "veth0" || len(ifs[1].XDP) != 1 || ifs[1].XDP[0].Hook != "xdpgeneric" || ifs[1].XDP[0].ID == 0 {
		t.Errorf("links with generic XDP on veth0: %+v", ifs)
	}
	if _, err := DecodeAll([]netlink.Message{{Header: netlink.Header{Type: unix.RTM_NEWLINK}, Data: []byte{0}}}); err == nil {
		t.Errorf("short ifinfomsg: no error")
	}
}

func TestDecodeStats64(t *testing.T) {
	t.Parallel()
	b := make([]byte, 25*8)
	for i := range 25 {
		binary.NativeEndian.PutUint64(b[i*8:], uint64(100+i))
	}
	want := Stats{RxErrors: 104, TxErrors: 105, RxDropped: 106, TxDropped: 107, RxMissed: 115, RxNoHandler: 123}
	if got := decodeStats64(b); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	// An older kernel's shorter structure: fields past its end read 0.
	if got := decodeStats64(b[:23*8]); got.RxNoHandler != 0 || got.RxMissed != 115 {
		t.Errorf("short stats %+v", got)
	}
}

// Decode reads what the kernel says of every interface, other programs' too: it must
// never panic.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"links", "links_programs"} {
		for _, m := range loadMessages(f, name) {
			f.Add(m.Data)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { t.Parallel(); _, _ = Decode(b) })
}
