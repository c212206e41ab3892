package xtables

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrShort is returned for an info struct shorter than its revision's layout.
var ErrShort = errors.New("extension info shorter than its struct")

// ErrUnknown is returned for an extension, revision or value this package does not decode.
var ErrUnknown = errors.New("extension revision or value not decoded")

// info reads an extension's struct: host byte order (the kernel's) but where the uapi
// header says __be.
type info []byte

func (d info) u8(off int) uint8         { return d[off] }
func (d info) u16(off int) uint16       { return binary.NativeEndian.Uint16(d[off:]) }
func (d info) be16(off int) uint16      { return binary.BigEndian.Uint16(d[off:]) }
func (d info) u32(off int) uint32       { return binary.NativeEndian.Uint32(d[off:]) }
func (d info) u64(off int) uint64       { return binary.NativeEndian.Uint64(d[off:]) }
func (d info) addr4(off int) netip.Addr { return netip.AddrFrom4([4]byte(d[off : off+4])) }
func (d info) addr16(off int) netip.Addr {
	return netip.AddrFrom16([16]byte(d[off : off+16]))
}

func (d info) put16(off int, v uint16) { binary.NativeEndian.PutUint16(d[off:], v) }
func (d info) put32(off int, v uint32) { binary.NativeEndian.PutUint32(d[off:], v) }

// inetAddr reads a union nf_inet_addr as the family's address.
func (d info) inetAddr(off int, family uint8) netip.Addr {
	if family == unix.NFPROTO_IPV6 {
		return d.addr16(off)
	}
	return d.addr4(off)
}

// str reads a NUL-terminated char array of n bytes.
func (d info) str(off, n int) string {
	s := d[off : off+n]
	if i := strings.IndexByte(string(s), 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// check fails when the struct is shorter than n bytes.
func (d info) check(n int) error {
	if len(d) < n {
		return ErrShort
	}
	return nil
}
