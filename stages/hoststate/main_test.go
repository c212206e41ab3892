package hoststate

import (
	"os"
	"testing"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// TestMain fails the run when a test leaves a namespace, a BPF object or a netlink socket
// open.
func TestMain(m *testing.M) { os.Exit(testns.MainWithKernelFDs(m, "socket:")) }
