package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// recordedOriginals are the ranges and names the recorded reports use: none may survive.
var recordedOriginals = regexp.MustCompile(`198\.51\.100\.|203\.0\.113\.|192\.0\.2\.|2001:db8::|2001:db8:[0-9a-e]|pmt-[a-z]+-|\bvm\b`)

// TestRedact redacts every recorded report: no address, host name or namespace name of
// the original is left in its JSON or Markdown, the pseudonyms are stable, the result is
// still a valid report, and the verdict, judged again from the redacted evidence, is the
// same.
func TestRedact(t *testing.T) {
	t.Parallel()
	s := compileSchema(t)
	for _, name := range goldens(t) {
		t.Run(name, func(t *testing.T) {
			r := readRecorded(t, name)
			var before bytes.Buffer
			if err := r.WriteJSON(&before); err != nil {
				t.Fatal(err)
			}
			red := Redact(r)
			var after, md bytes.Buffer
			if err := red.WriteJSON(&after); err != nil {
				t.Fatal(err)
			}
			if err := red.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			_ = r.WriteJSON(&again)
			if !bytes.Equal(before.Bytes(), again.Bytes()) {
				t.Fatal("Redact changed the original report")
			}

			// Nothing of the original's addresses and names is left.
			var originals []string
			scanAddrs(before.String(), func(_, _ int, a netip.Addr) {
				if a = a.Unmap(); !a.IsLoopback() && !a.IsUnspecified() && !a.IsMulticast() {
					originals = append(originals, a.String())
				}
			})
			originals = append(originals, r.Host.Hostname, r.Host.Netns.Name)
			for _, out := range []string{after.String(), md.String()} {
				if m := recordedOriginals.FindString(out); m != "" {
					t.Errorf("%q survives redaction", m)
				}
				for _, o := range originals {
					if o != "" && containsToken(out, o) {
						t.Errorf("%s survives redaction", o)
					}
				}
			}
			if strings.Contains(after.String(), `"name": "pmt-`) {
				t.Error("a namespace name survives")
			}

			// Stable: the flow's address is the first pseudonym, and every packet of the
			// flow still names it, or an address a translation of the flow taught (a
			// packet on its way to the container it was DNATed to).
			want := "198.18.0.1"
			if r.Flow.Addr.Is6() {
				want = "2001:db8:ffff::1"
			}
			if r.Flow.Addr.IsMulticast() {
				want = r.Flow.Addr.String() // a group identifies no host: kept
			}
			if red.Flow.Addr.String() != want {
				t.Errorf("flow address redacted to %s, want %s", red.Flow.Addr, want)
			}
			ends := map[netip.Addr]bool{red.Flow.Addr: true}
			if k := red.Stages.KernelDrop; k != nil {
				for _, tr := range k.Translations {
					for _, l := range tr.Learned {
						ends[l.Addr()] = true
					}
				}
			}
			if a := red.Stages.Arrival; a != nil {
				for _, p := range a.Packets {
					if !ends[p.Src.Addr()] && !ends[p.Dst.Addr()] {
						t.Errorf("packet %s → %s lost the flow's address %s", p.Src, p.Dst, red.Flow.Addr)
					}
				}
			}
			if !strings.Contains(red.Verdict.Summary, red.Flow.String()) && strings.Contains(r.Verdict.Summary, r.Flow.String()) {
				t.Errorf("summary does not name the redacted flow: %s", red.Verdict.Summary)
			}

			// Still a report, with the same verdict, even judged again.
			if err := validate(s, after.Bytes()); err != nil {
				t.Errorf("redacted report is invalid: %v", err)
			}
			same := func(v Verdict) string {
				return v.Outcome + "/" + v.Stage + "/" + reasonOf(v) + "/" + v.Function + "/" + v.Location
			}
			if same(red.Verdict) != same(r.Verdict) {
				t.Errorf("verdict %s became %s", same(r.Verdict), same(red.Verdict))
			}
			if got, want := same(judge(red.Evidence())), same(judge(r.Evidence())); got != want {
				t.Errorf("judged again, the redacted evidence gives %s, the original %s", got, want)
			}
			if n := red.Run.Notes; len(n) == 0 || n[len(n)-1] != redactNote {
				t.Error("no note that the report is redacted")
			}

			// Redacting twice changes nothing more.
			var twice bytes.Buffer
			_ = Redact(red).WriteJSON(&twice)
			if !bytes.Equal(twice.Bytes(), after.Bytes()) {
				t.Error("redacting a redacted report changed it")
			}
		})
	}
}

// containsToken: o occurs in s not as part of a longer address or name.
func containsToken(s, o string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], o)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(o)
		if (j == 0 || !isNameByte(s[j-1]) && s[j-1] != ':') && (end == len(s) || !isNameByte(s[end]) && s[end] != ':' || s[end] == '.' && (end+1 == len(s) || !isAlnum(s[end+1]))) {
			return true
		}
		i = j + 1
	}
}

func TestScanAddrs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"198.51.100.2:8080/tcp was dropped":                                   "198.51.100.2",
		"[2001:db8::2]:80 and fe80::1%veth0.":                                 "2001:db8::2 fe80::1",
		"exec 3<>/dev/tcp/198.51.100.2/55527":                                 "198.51.100.2",
		"ip saddr 10.0.0.0/8 ip daddr ::ffff:10.1.2.3":                        "10.0.0.0 ::ffff:10.1.2.3",
		"route to 203.0.113.9. Then":                                          "203.0.113.9",
		"addr:192.0.2.1, 2001:db8::1: no":                                     "192.0.2.1 2001:db8::1",
		"00:14:41.103004 6.18.44 tcp_v4_rcv+0x91 aa:bb:cc:dd:ee:ff 1.2.3.4.5": "",
		"2026-11-22T00:14:41.103004458Z dead:beef":                            "",
	} {
		var got []string
		scanAddrs(in, func(start, end int, a netip.Addr) {
			if s := in[start:end]; s != a.String() {
				t.Errorf("%q: span %q is not %s", in, s, a)
			}
			got = append(got, a.String())
		})
		if strings.Join(got, " ") != want {
			t.Errorf("%q: found %v, want %s", in, got, want)
		}
	}
}

func TestRedactText(t *testing.T) {
	t.Parallel()
	r := readRecorded(t, "sender_egress_firewall")
	red := Redact(r)
	raw, _ := json.Marshal(red)
	for _, want := range []string{`"hostname":"host-1"`, `"name":"netns-1"`, "ip netns exec netns-2 diagnose --flow 198.18.0.1:", "namespace netns-2 ("} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("redacted report lacks %q", want)
		}
	}
}
