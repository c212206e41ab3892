package evidence

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseFlow(t *testing.T) {
	t.Parallel()
	good := []struct {
		spec string
		want string
	}{
		{"10.0.0.1:80", "10.0.0.1:80/tcp"},
		{"198.51.100.2:65535", "198.51.100.2:65535/tcp"},
		{"[2001:db8::1]:80", "[2001:db8::1]:80/tcp"},
		{"[::ffff:203.0.113.7]:443", "203.0.113.7:443/tcp"},
		{"203.0.113.7:0443", "203.0.113.7:443/tcp"},
	}
	for _, c := range good {
		f, err := ParseFlow(c.spec, TCP)
		if err != nil {
			t.Errorf("ParseFlow(%q): %v", c.spec, err)
			continue
		}
		if f.String() != c.want {
			t.Errorf("ParseFlow(%q) = %s, want %s", c.spec, f, c.want)
		}
	}
	bad := map[string]string{
		"":                              "empty",
		"10.0.0.1":                      "no port",
		"10.0.0.1:":                     "not a number",
		"10.0.0.1:0":                    "1-65535",
		"10.0.0.1:65536":                "1-65535",
		"10.0.0.1:-1":                   "not a number",
		"10.0.0.1:+80":                  "not a number",
		"10.0.0.1:8o":                   "not a number",
		"example.com:80":                "host names",
		"2001:db8::1:80":                "brackets",
		"[2001:db8::1:80":               "unclosed",
		"[10.0.0.1]:80":                 "IPv6 addresses only",
		"[fe80::1%eth0]:80":             "zones",
		"10.0.0.1:99999999999999999999": "1-65535",
	}
	for spec, why := range bad {
		_, err := ParseFlow(spec, TCP)
		if err == nil {
			t.Errorf("ParseFlow(%q) succeeded, want an error about %s", spec, why)
			continue
		}
		if !errors.Is(err, ErrFlowSyntax) || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseFlow(%q) = %v, want ErrFlowSyntax about %q", spec, err, why)
		}
	}
}

func TestEndpointsMatch(t *testing.T) {
	t.Parallel()
	f, _ := ParseFlow("198.51.100.2:8080", UDP)
	const nsA, nsB = 4026531840, 4026532000
	ends := Endpoints{f.Endpoint(),
		{ID: 2, Addr: netip.MustParseAddr("203.0.113.2"), Port: 80, Proto: UDP, Netns: nsA},
		{ID: 3, Addr: netip.MustParseAddr("2001:db8::2"), Port: 53, Proto: TCP}}
	ap := netip.MustParseAddrPort
	cases := []struct {
		proto    uint8
		src, dst string
		netns    uint64
		want     uint32 // 0: no match
	}{
		{17, "198.51.100.1:5000", "198.51.100.2:8080", 0, 1},
		{17, "198.51.100.2:8080", "198.51.100.1:5000", nsB, 1},
		{6, "198.51.100.1:5000", "198.51.100.2:8080", 0, 0},
		{17, "198.51.100.1:8080", "198.51.100.2:5000", 0, 0},
		// A packet carries one family: an IPv4-mapped address in an IPv6 header is not
		// the IPv4 endpoint (flow.h compares the family too).
		{17, "[::ffff:198.51.100.2]:8080", "198.51.100.1:1", 0, 0},
		{17, "198.51.100.1:1", "203.0.113.2:80", nsA, 2},
		{17, "198.51.100.1:1", "203.0.113.2:80", 0, 2},
		{17, "198.51.100.1:1", "203.0.113.2:80", nsB, 0},
		{6, "[2001:db8::2]:53", "[2001:db8::9]:4000", nsB, 3},
	}
	for _, c := range cases {
		e, ok := ends.Match(c.proto, ap(c.src), ap(c.dst), c.netns)
		if ok != (c.want != 0) || e.ID != c.want {
			t.Errorf("Match(%d, %s, %s, %d) = %v %v, want id %d", c.proto, c.src, c.dst, c.netns, e, ok, c.want)
		}
	}
	if got := ends.In(nsB); len(got) != 2 || got[0].ID != 1 || got[1].ID != 3 {
		t.Errorf("In(nsB) = %v, want endpoints 1 and 3", got)
	}
}

// FuzzParseFlow: any input either fails with ErrFlowSyntax or gives a flow that prints
// back to something that parses to the same flow.
func FuzzParseFlow(f *testing.F) {
	for _, s := range []string{"10.0.0.1:80", "[2001:db8::1]:80", "[::ffff:1.2.3.4]:1", "a:b", "[", ":", "1.2.3.4:65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		t.Parallel()
		fl, err := ParseFlow(spec, UDP)
		if err != nil {
			if !errors.Is(err, ErrFlowSyntax) {
				t.Fatalf("error without ErrFlowSyntax: %v", err)
			}
			return
		}
		if fl.Port == 0 || !fl.Addr.IsValid() || fl.Addr.Zone() != "" || fl.Addr.Is4In6() {
			t.Fatalf("bad flow from %q: %+v", spec, fl)
		}
		s := fl.String()
		back, err := ParseFlow(strings.TrimSuffix(s, "/udp"), UDP)
		if err != nil || back != fl {
			t.Fatalf("%q -> %s -> %+v, %v", spec, s, back, err)
		}
	})
}

func TestFlowCheck(t *testing.T) {
	t.Parallel()
	ok := Flow{Addr: netip.MustParseAddr("198.51.100.2"), Port: 80, Proto: TCP}
	if err := ok.Check(); err != nil {
		t.Errorf("%v: %v", ok, err)
	}
	for want, f := range map[string]Flow{
		"no address": {Port: 80, Proto: TCP},
		"no port":    {Addr: ok.Addr, Proto: UDP},
		"not tcp":    {Addr: ok.Addr, Port: 80, Proto: "sctp"},
	} {
		if err := f.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%+v) = %v, want an error about %s", f, err, want)
		}
	}
}
