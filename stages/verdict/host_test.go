package verdict

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/packetmortem/packetmortem/stages/evidence"
	"github.com/packetmortem/packetmortem/stages/verdict/reasons"
)

// TestReasonStagesOnPath: every stage the knowledge base names is a stage of the map.
func TestReasonStagesOnPath(t *testing.T) {
	t.Parallel()
	for name, e := range reasons.Entries() {
		if e.Stage != "" && !slices.Contains(Path, Stage(e.Stage)) {
			t.Errorf("%s: stage %q is not on the path", name, e.Stage)
		}
	}
}

// TestListening: which socket on the flow's port takes its packets, by address.
func TestListening(t *testing.T) {
	t.Parallel()
	v4 := evidence.Flow{Addr: netip.MustParseAddr("198.51.100.2"), Port: 8080, Proto: evidence.TCP}
	v6 := evidence.Flow{Addr: netip.MustParseAddr("2001:db8::2"), Port: 8080, Proto: evidence.TCP}
	l := func(local string) evidence.Listener {
		return evidence.Listener{Proto: "tcp", Local: netip.MustParseAddrPort(local), State: "LISTEN"}
	}
	cases := []struct {
		name      string
		flow      evidence.Flow
		ls        []evidence.Listener
		want      reasons.Situation
		listener  string
		listening []string
	}{
		{"none", v4, nil, reasons.NothingListens, "", nil},
		{"another port or protocol", v4, []evidence.Listener{l("0.0.0.0:9090"), {Proto: "udp", Local: netip.MustParseAddrPort("0.0.0.0:8080")}}, reasons.NothingListens, "", nil},
		{"loopback only", v4, []evidence.Listener{l("127.0.0.1:8080")}, reasons.ListensElsewhere, "", []string{"127.0.0.1:8080"}},
		{"v6 loopback only", v6, []evidence.Listener{l("[::1]:8080")}, reasons.ListensElsewhere, "", []string{"[::1]:8080"}},
		{"v4 wildcard", v4, []evidence.Listener{l("127.0.0.1:8080"), l("0.0.0.0:8080")}, reasons.ListenerTakes, "0.0.0.0:8080", nil},
		{"v4 wildcard does not take v6", v6, []evidence.Listener{l("0.0.0.0:8080")}, reasons.ListensElsewhere, "", []string{"0.0.0.0:8080"}},
		{"v6 wildcard takes v4", v4, []evidence.Listener{l("[::]:8080")}, reasons.ListenerTakes, "[::]:8080", nil},
		{"the flow's own address, mapped", v4, []evidence.Listener{l("[::ffff:198.51.100.2]:8080")}, reasons.ListenerTakes, "[::ffff:198.51.100.2]:8080", nil},
		{"no address", v4, []evidence.Listener{{Proto: "tcp", Local: netip.AddrPortFrom(netip.Addr{}, 8080)}}, reasons.ListenersUnknown, "", nil},
	}
	for _, c := range cases {
		s, listener, listening := listening(c.ls, c.flow)
		if s != c.want || listener != c.listener || !slices.Equal(listening, c.listening) {
			t.Errorf("%s: %s, %q, %q; want %s, %q, %q", c.name, s, listener, listening, c.want, c.listener, c.listening)
		}
	}
}

// TestHostSettings: forwarding and reverse-path filtering as the host's settings say.
func TestHostSettings(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]reasons.Situation{"": "", "0": reasons.ForwardingOff, " 0\n": reasons.ForwardingOff, "1": reasons.ForwardingOn} {
		if s, ok := forwarding(value); s != want || ok != (want != "") {
			t.Errorf("forwarding(%q) = %s, %v; want %s", value, s, ok, want)
		}
	}
	for _, c := range []struct {
		iface, all string
		want       reasons.Situation
	}{
		{"", "", ""}, {"1", "1", reasons.RPFilterRead}, {"1", "2", reasons.RPFilterLoose}, {"2", "0", reasons.RPFilterLoose},
		{"x", "2", reasons.RPFilterRead}, {"1", "", reasons.RPFilterHalfRead}, {"", "0", reasons.RPFilterHalfRead},
	} {
		if s, ok := rpFilter(c.iface, c.all); s != c.want || ok != (c.want != "") {
			t.Errorf("rpFilter(%q, %q) = %s, %v; want %s", c.iface, c.all, s, ok, c.want)
		}
	}
}
