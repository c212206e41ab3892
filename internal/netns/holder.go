package netns

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/mdlayher/netlink"
	"github.com/packetmortem/packetmortem/internal/links"
	"golang.org/x/sys/unix"
)

// walk visits each network namespace of the host once, with a path that opens it: the
// named ones under Dir first, then those of running processes, until visit returns false.
// A namespace that neither a name nor a process holds cannot be visited (nor opened).
func walk(visit func(ino uint64, path string) bool) {
	seen := map[uint64]bool{}
	for ino, name := range Names() {
		seen[ino] = true
		if !visit(ino, filepath.Join(Dir, name)) {
			return
		}
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		path := filepath.Join("/proc", p.Name(), "ns/net")
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil || seen[st.Ino] {
			continue
		}
		seen[st.Ino] = true
		if !visit(st.Ino, path) {
			return
		}
	}
}

// Holding opens the network namespace next to from (nil: the current one) where addr is
// an interface's address: where a packet of from's sent to addr is delivered on this host.
// Next to: joined to from by a veth or another pair of devices, so that of namespaces that
// have the same address (containers of separate networks, say) only the one from reaches
// is found. It returns nil when none has it (the address is another host's, or further).
func Holding(addr netip.Addr, from *Handle) (*Handle, error) {
	addr = addr.Unmap()
	c, err := routeSocket(from)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ifs, err := links.Dump(c)
	if err != nil {
		return nil, err
	}
	peers := map[int32]bool{}
	for _, l := range ifs {
		if l.PeerNetnsID >= 0 {
			peers[l.PeerNetnsID] = true
		}
	}
	if len(peers) == 0 {
		return nil, nil
	}
	var found *Handle
	var errs []error
	walk(func(ino uint64, path string) bool {
		h, err := Open(path)
		if err != nil {
			// The process exited, or the name went, since the walk saw it.
			return true
		}
		keep := false
		defer func() {
			if !keep {
				h.Close()
			}
		}()
		if id, err := nsid(c, h); err != nil || !peers[id] {
			return true
		}
		has, err := hasAddr(h, addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
		}
		keep = has
		if has {
			found = h
		}
		return !has
	})
	if found == nil && len(errs) > 0 {
		return nil, fmt.Errorf("find the network namespace that has %s: %w", addr, errs[0])
	}
	return found, nil
}

func routeSocket(h *Handle) (*netlink.Conn, error) {
	cfg := &netlink.Config{}
	if h != nil {
		cfg.NetNS = h.Fd()
	}
	c, err := netlink.Dial(unix.NETLINK_ROUTE, cfg)
	if err != nil {
		return nil, fmt.Errorf("open route socket: %w", err)
	}
	return c, nil
}

// nsid is the id that c's namespace gives namespace h (RTM_GETNSID), -1 when it gives
// none: only a namespace it has a device pair with, or was told of, has one.
func nsid(c *netlink.Conn, h *Handle) (int32, error) {
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.NativeEndian
	ae.Uint32(unix.NETNSA_FD, uint32(h.Fd()))
	attrs, err := ae.Encode()
	if err != nil {
		return -1, err
	}
	// struct rtgenmsg, padded to 4 bytes, then the attributes.
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETNSID, Flags: netlink.Request},
		Data:   append([]byte{unix.AF_UNSPEC, 0, 0, 0}, attrs...),
	})
	if err != nil {
		return -1, fmt.Errorf("ask the id of %s (RTM_GETNSID): %w", h, err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWNSID || len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			continue
		}
		ad.ByteOrder = binary.NativeEndian
		for ad.Next() {
			if ad.Type() == unix.NETNSA_NSID {
				return ad.Int32(), nil
			}
		}
	}
	return -1, nil
}

// ifaddrmsgLen is the size of struct ifaddrmsg, which heads an RTM_NEWADDR message.
const ifaddrmsgLen = 8

// hasAddr says whether an interface of namespace h has addr, from a dump of its addresses.
func hasAddr(h *Handle, addr netip.Addr) (bool, error) {
	c, err := routeSocket(h)
	if err != nil {
		return false, err
	}
	defer c.Close()
	family := byte(unix.AF_INET)
	if addr.Is6() {
		family = unix.AF_INET6
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETADDR, Flags: netlink.Request | netlink.Dump},
		Data:   []byte{family, 0, 0, 0, 0, 0, 0, 0},
	})
	if err != nil {
		return false, fmt.Errorf("dump addresses: %w", err)
	}
	want := addr.AsSlice()
	for _, m := range msgs {
		if len(m.Data) < ifaddrmsgLen || m.Data[0] != family {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[ifaddrmsgLen:])
		if err != nil {
			continue
		}
		ad.ByteOrder = binary.NativeEndian
		for ad.Next() {
			if t := ad.Type(); (t == unix.IFA_LOCAL || t == unix.IFA_ADDRESS) && string(ad.Bytes()) == string(want) {
				return true, nil
			}
		}
	}
	return false, nil
}

// Follower follows a flow into the namespaces next to From that have its addresses: for
// each address once, in the background, it finds the namespace (Holding) and hands it to
// the function given, which starts what the stage does there.
type Follower struct {
	From *Handle // nil: the current namespace

	wg     sync.WaitGroup
	mu     sync.Mutex
	looked map[netip.Addr]bool
	closed bool
	errs   []string
}

// Follow looks for the namespace that has addr, unless it was looked for already, and
// calls into with it (open until into returns). what names the endpoint in errors.
func (f *Follower) Follow(addr netip.Addr, what string, into func(*Handle) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.looked[addr] {
		return
	}
	if f.looked == nil {
		f.looked = map[netip.Addr]bool{}
	}
	f.looked[addr] = true
	f.wg.Add(1)
	go f.run(addr, what, into)
}

// FollowNow is Follow done before it returns: for what must be in place before the traffic
// comes (the flow's own address, while a stage arms). Loading and attaching there take
// tens of milliseconds, which a translation learned during the run cannot wait for.
func (f *Follower) FollowNow(addr netip.Addr, what string, into func(*Handle) error) {
	f.mu.Lock()
	if f.closed || f.looked[addr] {
		f.mu.Unlock()
		return
	}
	if f.looked == nil {
		f.looked = map[netip.Addr]bool{}
	}
	f.looked[addr] = true
	f.wg.Add(1)
	f.mu.Unlock()
	f.run(addr, what, into)
}

func (f *Follower) run(addr netip.Addr, what string, into func(*Handle) error) {
	defer f.wg.Done()
	h, err := Holding(addr, f.From)
	if err == nil && h != nil {
		err = into(h)
		h.Close()
	}
	if err != nil {
		f.mu.Lock()
		f.errs = append(f.errs, fmt.Sprintf("following %s into the namespace that has its address: %v", what, err))
		f.mu.Unlock()
	}
}

// Wait waits for the lookups and starts under way, ends the following (Follow does
// nothing after it), and returns what went wrong, one line each.
func (f *Follower) Wait() []string {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := f.errs
	f.errs = nil
	return errs
}
