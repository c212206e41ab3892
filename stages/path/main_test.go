package path

import (
	"os"
	"testing"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// TestMain fails the run when a test leaves a namespace or a BPF object behind.
func TestMain(m *testing.M) { os.Exit(testns.MainWithKernelFDs(m)) }

func checkReleased(t *testing.T) { testns.CheckReleased(t) }
