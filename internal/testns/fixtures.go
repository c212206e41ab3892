package testns

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
)

// NetlinkMessages reads recorded netlink messages: a file of one hex-encoded message a
// line, "#" lines being comments (what the end-to-end tests record with -record).
func NetlinkMessages(t testing.TB, path string) []netlink.Message {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var msgs []netlink.Message
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		var m netlink.Message
		if err := m.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return msgs
}
