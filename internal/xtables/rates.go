package xtables

import (
	"fmt"
	"math"
	"strings"

	"golang.org/x/sys/unix"
)

// Rate matches: limit, hashlimit, statistic.

// Rate units of limit (XT_LIMIT_SCALE per second) and hashlimit (revision 3's scale is
// a million per second), longest first.
var rateUnits = []struct {
	name string
	secs uint64
}{{"day", 24 * 60 * 60}, {"hour", 60 * 60}, {"min", 60}, {"sec", 1}}

// rate prints an average period (scale per second) as the largest unit that counts it
// exactly enough, as libxt_limit's print_rate, and returns the unit's length in seconds.
func rate(period, scale uint64) (string, uint64) {
	if period == 0 {
		return fmt.Sprintf("%f", math.Inf(1)), 0
	}
	i := 1
	for ; i < len(rateUnits); i++ {
		mult := rateUnits[i].secs * scale
		if period > mult || mult/period < mult%period {
			break
		}
	}
	u := rateUnits[i-1]
	return fmt.Sprintf("%d/%s", u.secs*scale/period, u.name), u.secs
}

// limit (xt_rateinfo): avg, burst.
func limitSave(_ *saveCtx, d info) (string, error) {
	r, _ := rate(uint64(d.u32(0)), 10000)
	s := " --limit " + r
	if d.u32(4) != 5 {
		s += fmt.Sprintf(" --limit-burst %d", d.u32(4))
	}
	return s, nil
}

// hashlimit revision 3 (xt_hashlimit_mtinfo3): name[255], then hashlimit_cfg3 at 256.
func hashlimitSave(c *saveCtx, d info) (string, error) {
	const (
		sip, spt, dip, dpt = 4, 8, 1, 2
		invert, bytes      = 0x10, 0x20
		rateMatch          = 0x40
	)
	avg, burst, mode := d.u64(256), d.u64(264), d.u32(272)
	size, max, gc, expire, interval := d.u32(276), d.u32(280), d.u32(284), d.u32(288), d.u32(292)
	srcmask, dstmask := d.u8(296), d.u8(297)
	var b strings.Builder
	if mode&invert != 0 {
		b.WriteString(" --hashlimit-above ")
	} else {
		b.WriteString(" --hashlimit-upto ")
	}
	var quantum uint64
	if mode&bytes != 0 {
		s, q := hashlimitBytes(avg, burst)
		b.WriteString(s)
		quantum = q
	} else {
		r, secs := rate(avg, 1000000)
		b.WriteString(r)
		fmt.Fprintf(&b, " --hashlimit-burst %d", burst)
		quantum = secs * 1000
	}
	if mode&(sip|spt|dip|dpt) != 0 {
		var names []string
		for _, m := range []struct {
			bit  uint32
			name string
		}{{sip, "srcip"}, {spt, "srcport"}, {dip, "dstip"}, {dpt, "dstport"}} {
			if mode&m.bit != 0 {
				names = append(names, m.name)
			}
		}
		b.WriteString(" --hashlimit-mode " + strings.Join(names, ","))
	}
	b.WriteString(" --hashlimit-name " + d.str(0, 255))
	if size != 0 {
		fmt.Fprintf(&b, " --hashlimit-htable-size %d", size)
	}
	if max != 0 {
		fmt.Fprintf(&b, " --hashlimit-htable-max %d", max)
	}
	if gc != 1000 {
		fmt.Fprintf(&b, " --hashlimit-htable-gcinterval %d", gc)
	}
	if uint64(expire) != quantum {
		fmt.Fprintf(&b, " --hashlimit-htable-expire %d", expire)
	}
	full := uint8(32)
	if c.family == unix.NFPROTO_IPV6 {
		full = 128
	}
	if srcmask != full {
		fmt.Fprintf(&b, " --hashlimit-srcmask %d", srcmask)
	}
	if dstmask != full {
		fmt.Fprintf(&b, " --hashlimit-dstmask %d", dstmask)
	}
	if mode&rateMatch != 0 {
		b.WriteString(" --hashlimit-rate-match")
		if interval != 1 {
			fmt.Fprintf(&b, " --hashlimit-rate-interval %d", interval)
		}
	}
	return b.String(), nil
}

// hashlimitBytes prints a byte rate: the kernel keeps a cost per byte, which libxt_hashlimit
// turns back into bytes per second in the largest unit that gives the same cost.
func hashlimitBytes(avg, burst uint64) (string, uint64) {
	units := []struct {
		name   string
		thresh uint64
	}{{"m", 1 << 20}, {"k", 1 << 10}, {"", 1}}
	costToBytes := func(cost uint64) uint64 {
		r := uint64(math.MaxUint32)
		if cost != 0 {
			r = math.MaxUint32 / cost
		}
		return (r - 1) << 4
	}
	bytesToCost := func(b uint64) uint64 { return math.MaxUint32 / ((b >> 4) + 1) }
	r := costToBytes(avg)
	i := 0
	for ; i < len(units)-1; i++ {
		if r >= units[i].thresh && bytesToCost(r&^(units[i].thresh-1)) == avg {
			break
		}
	}
	s := fmt.Sprintf("%d%sb/s", r/units[i].thresh, units[i].name)
	if burst == 0 {
		return s, 15000
	}
	r *= burst
	for i = 0; i < len(units)-1; i++ {
		if r >= units[i].thresh {
			break
		}
	}
	return s + fmt.Sprintf(" --hashlimit-burst %d%sb", r/units[i].thresh, units[i].name), 60000
}

// statistic (xt_statistic_info): mode, flags, then probability or every, packet.
func statisticSave(_ *saveCtx, d info) (string, error) {
	iv := inv(d.u16(2)&1 != 0)
	switch d.u16(0) {
	case 0:
		return fmt.Sprintf(" --mode random%s --probability %.11f", iv, float64(d.u32(4))/0x80000000), nil
	case 1:
		return fmt.Sprintf(" --mode nth%s --every %d --packet %d", iv, d.u32(4)+1, d.u32(8)), nil
	}
	return "", ErrUnknown
}
