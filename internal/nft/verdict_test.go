package nft

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestVerdictString(t *testing.T) {
	t.Parallel()
	for code, want := range map[int32]string{
		Drop: "drop", Accept: "accept", Stolen: "stolen", Queue | 3<<16: "queue",
		Continue: "continue", Return: "return", Break: "break", -42: "verdict -42",
		Drop | 1<<16: "drop", // NF_DROP_ERR
	} {
		if got := VerdictString(code, ""); got != want {
			t.Errorf("verdict %d = %q, want %q", code, got, want)
		}
	}
	if got := VerdictString(Jump, "x"); got != "jump x" {
		t.Errorf("jump = %q", got)
	}
	if got := VerdictString(Goto, "y"); got != "goto y" {
		t.Errorf("goto = %q", got)
	}
	if Terminal(Continue) || !Terminal(Drop) || !Terminal(Queue|1<<16) {
		t.Errorf("Terminal wrong")
	}
	if HookName(unix.NFPROTO_INET, unix.NF_INET_LOCAL_IN) != "input" || HookName(unix.NFPROTO_NETDEV, 0) != "ingress" ||
		HookName(unix.NFPROTO_ARP, 1) != "output" {
		t.Errorf("hook names wrong")
	}
}
