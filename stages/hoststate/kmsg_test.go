package hoststate

import (
	"net/netip"
	"os"
	"reflect"
	"testing"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Conntrack's lines for the flow's packets are kept, either way they go; other flows',
// other messages and records without a text are not.
func TestConntrackLines(t *testing.T) {
	t.Parallel()
	records := []string{
		"4,1201,8812345,-;nf_ct_tcp: invalid tcp flag combination IN=veth0 OUT= MAC=aa SRC=198.51.100.1 DST=198.51.100.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=7 PROTO=TCP SPT=40002 DPT=8080 WINDOW=64240 RES=0x00 SYN FIN URGP=0 \n SUBSYSTEM=net\n",
		"4,1202,8812346,-;nf_ct_tcp: SEQ is over the upper bound (over the window of the receiver) IN= OUT=veth0 SRC=198.51.100.2 DST=198.51.100.1 PROTO=TCP SPT=8080 DPT=40002 ACK \n",
		"4,1203,8812347,-;nf_ct_tcp: invalid tcp flag combination IN=veth0 SRC=198.51.100.1 DST=198.51.100.9 PROTO=TCP SPT=40002 DPT=8080 \n",
		"6,1204,8812348,-;veth0: renamed from eth1\n",
		"garbage without a separator",
	}
	var msgs []string
	for _, r := range records {
		msgs = append(msgs, kmsgText(r))
	}
	ends := evidence.Endpoints{{Addr: netip.MustParseAddr("198.51.100.2"), Port: 8080, Proto: evidence.TCP}}
	want := []string{
		"nf_ct_tcp: invalid tcp flag combination IN=veth0 OUT= MAC=aa SRC=198.51.100.1 DST=198.51.100.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=7 PROTO=TCP SPT=40002 DPT=8080 WINDOW=64240 RES=0x00 SYN FIN URGP=0 ",
		"nf_ct_tcp: SEQ is over the upper bound (over the window of the receiver) IN= OUT=veth0 SRC=198.51.100.2 DST=198.51.100.1 PROTO=TCP SPT=8080 DPT=40002 ACK ",
	}
	if got := conntrackLines(msgs, ends); !reflect.DeepEqual(got, want) {
		t.Errorf("kept %q\nwant %q", got, want)
	}
}

// The log opens at its end and reads back nothing written before.
func TestKmsgTail(t *testing.T) {
	k, err := openKmsg()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("open the kernel log: %v", err)
		}
		t.Skipf("no kernel log to read here: %v", err)
	}
	msgs, err := k.messages()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) > 50 {
		t.Errorf("read %d records at once from the log's end: it did not start at the end", len(msgs))
	}
}
