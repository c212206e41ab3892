package hoststate

import (
	"errors"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// Conntrack says why it finds a packet invalid only in the kernel log, and only when
// asked (net.netfilter.nf_conntrack_log_invalid): "nf_ct_tcp: invalid tcp flag combination
// IN=... SRC=... DPT=...". The log is followed from the run's start, read-only, so that
// a host that already logs gives the verdict conntrack's own reason.

// maxConntrackLog bounds the lines kept: they repeat for every packet of a flood.
const maxConntrackLog = 10

// kmsgTail reads the kernel log's records written since it was opened.
type kmsgTail struct{ fd int }

// openKmsg opens /dev/kmsg at its end. Any error leaves the log unread: it is extra.
func openKmsg() (*kmsgTail, error) {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &kmsgTail{fd: fd}, nil
}

// messages returns the text of each record written since, and closes the log. A record
// overwritten before it was read (EPIPE) is skipped, as the kernel moves on.
func (k *kmsgTail) messages() ([]string, error) {
	defer unix.Close(k.fd)
	var out []string
	buf := make([]byte, 8192) // one record per read; the kernel's limit is below
	for len(out) < 10000 {
		n, err := unix.Read(k.fd, buf)
		switch {
		case errors.Is(err, unix.EPIPE):
			continue
		case errors.Is(err, unix.EAGAIN):
			return out, nil
		case err != nil:
			return out, err
		}
		out = append(out, kmsgText(string(buf[:n])))
	}
	return out, nil
}

// kmsgText is a /dev/kmsg record's message: after "PRIORITY,SEQ,TIME,FLAGS;", before the
// continuation lines (" KEY=value") of its dictionary.
func kmsgText(record string) string {
	_, msg, ok := strings.Cut(record, ";")
	if !ok {
		return ""
	}
	msg, _, _ = strings.Cut(msg, "\n")
	return msg
}

// conntrackLines are the messages in which conntrack says why a packet of the flow was
// invalid: nf_log's line names its addresses and ports (SRC= DST= SPT= DPT=).
func conntrackLines(msgs []string, ends evidence.Endpoints) []string {
	var out []string
	for _, m := range msgs {
		if !strings.HasPrefix(m, "nf_ct_") {
			continue
		}
		fields := map[string]string{}
		for _, f := range strings.Fields(m) {
			if k, v, ok := strings.Cut(f, "="); ok {
				fields[k] = v
			}
		}
		for _, e := range ends {
			addr, port := e.Addr.Unmap().String(), strconv.Itoa(int(e.Port))
			if fields["SRC"] == addr && fields["SPT"] == port || fields["DST"] == addr && fields["DPT"] == port {
				out = append(out, m)
				break
			}
		}
		if len(out) == maxConntrackLog {
			break
		}
	}
	return out
}
