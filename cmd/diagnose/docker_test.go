package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/packetmortem/packetmortem/internal/testns"
	"github.com/packetmortem/packetmortem/report"
	"github.com/packetmortem/packetmortem/stages/verdict"
)

var (
	// The Docker tests run in the host job (make test). .ci/vm-test's guest (Debian's 6.1
	// under qemu, a read-only 9p root, a busybox init) is not set up to run dockerd, and
	// emulated it would take minutes to start: vm-test passes -no-docker, and each Docker
	// test says it was left to the host job.
	noDocker     = flag.Bool("no-docker", false, "skip the tests that run a Docker daemon, saying so (the 6.1 VM job: they run in the host job)")
	dockerReport = flag.String("docker-report", "", "write the Markdown report of the published-port test (nothing listening) to `FILE`")
)

// dockerScenario is a scenario whose server namespace runs a Docker daemon: the client
// connects to a port a container publishes at the server's address, and diagnose runs in
// the server's namespace, where the daemon's DNAT sends the flow on into the container's.
//
// Not parallel: every daemon gives its first container 203.0.113.2, and an endpoint a
// translation taught applies in every namespace, so another test's container would show
// among the drops elsewhere on the host (translations are learned in the namespace
// diagnosed only, so the verdict would not take them); and a daemon takes seconds of CPU
// to start.
func dockerScenario(t *testing.T, tag string, v6 bool) (*scenario, *testns.Docker) {
	t.Helper()
	if *noDocker {
		t.Skip("-no-docker: the Docker tests run in the host job (make test), not in the 6.1 VM's")
	}
	s := newScenario(t, tag, v6, "tcp")
	return s, s.pair.StartDocker(t)
}

// eachFamily runs fn for IPv4 then IPv6, one after the other (see dockerScenario).
func eachFamily(t *testing.T, fn func(t *testing.T, v6 bool)) {
	for _, v6 := range []bool{false, true} {
		t.Run("ip"+map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) { fn(t, v6) })
	}
}

// A port published to a container where nothing listens: the kernel drops the SYN in the
// container's namespace, and the verdict says so, with Docker's DNAT and the container by
// its Docker name (found under the daemon's own --data-root, not /var/lib/docker), and the
// fix quotes the mapping that leads to the container's port.
func TestE2EDockerPublishedNoListener(t *testing.T) {
	eachFamily(t, func(t *testing.T, v6 bool) {
		s, d := dockerScenario(t, "dkn", v6)
		name := testns.Name("web")
		id := d.Run(t, name, s.port, "sleep", "600")
		to := net.JoinHostPort(d.IP(t, name, v6), "80")
		rep := s.diagnose(t, "docker_published_no_listener_"+family(v6), s.fromClient(connect))
		if *dockerReport != "" && !v6 {
			saveMarkdown(t, rep, *dockerReport)
		}
		container := fmt.Sprintf("container %s (docker, id %s)", name, id[:12])
		expectDNATNoListener(t, rep, to, container, container)
		if want := fmt.Sprintf("; the port is published as %d->%d", s.port, testns.DockerPort); !strings.Contains(rep.Verdict.Fix, want) {
			t.Errorf("fix %q does not say %q", rep.Verdict.Fix, want)
		}
	})
}

// A published port with a listener in the container: the flow is delivered there, which
// the verdict says, not that this host forwarded it (the answers go out via veth0) nor that
// it was dropped.
func TestE2EDockerPublishedListener(t *testing.T) {
	eachFamily(t, func(t *testing.T, v6 bool) {
		s, d := dockerScenario(t, "dkl", v6)
		name := testns.Name("echo")
		id := d.Run(t, name, s.port, "nc", "-ll", "-p", "80", "-e", "cat")
		d.WaitListening(t, name)
		rep := s.diagnose(t, "", s.fromClient(connect))
		expect(t, rep, verdict.Delivered, verdict.Socket, "")
		container := fmt.Sprintf("container %s (docker, id %s)", name, id[:12])
		if !strings.Contains(rep.Verdict.Summary, container) {
			t.Errorf("summary %q does not say where it was delivered (%s)", rep.Verdict.Summary, container)
		}
	})
}

// A DROP rule in DOCKER-USER, the chain Docker leaves to its users: the verdict is a
// firewall drop in forward, in Docker's table ip filter, chain DOCKER-USER. Docker 20.10
// (Debian 12's) makes no DOCKER-USER for IPv6, so there the rule goes first in FORWARD.
func TestE2EDockerUserDrop(t *testing.T) {
	eachFamily(t, func(t *testing.T, v6 bool) {
		s, d := dockerScenario(t, "dku", v6)
		name := testns.Name("web")
		d.Run(t, name, s.port, "nc", "-ll", "-p", "80", "-e", "cat")
		d.WaitListening(t, name)
		tool, family, chain := "iptables", "ip", "DOCKER-USER"
		if v6 {
			tool, family, chain = "ip6tables", "ip6", "FORWARD"
		}
		s.pair.InServer(t, testns.Tool(t, tool), "-I", chain, "-p", "tcp", "--dport", "80", "-j", "DROP")
		rep := s.diagnose(t, "", s.fromClient(connect))
		expect(t, rep, verdict.Dropped, verdict.Forward, "NETFILTER_DROP")
		// Docker's tables are iptables-nft's: the rule is named as iptables-save prints it.
		want := fmt.Sprintf("-A %s -p tcp -m tcp --dport 80 -j DROP", chain)
		if r := rep.Verdict.Rule; r == nil || r.Family != family || r.Table != "filter" || r.Chain != chain || r.Rule != want || r.Syntax != tool || r.Number != 1 {
			t.Errorf("rule %+v, want %s's %q, the first of chain %s in table %s filter", r, tool, want, chain, family)
		}
		if !strings.Contains(rep.Verdict.Summary, want) {
			t.Errorf("summary %q does not quote the rule", rep.Verdict.Summary)
		}
		// The fix is said with the tool that made the table.
		if want := fmt.Sprintf("`%s -t filter -D %s 1`", tool, chain); !strings.Contains(rep.Verdict.Fix, want) {
			t.Errorf("fix %q does not say %s", rep.Verdict.Fix, want)
		}
	})
}

func saveMarkdown(t *testing.T, rep *report.Report, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := rep.WriteMarkdown(f); err != nil {
		t.Fatal(err)
	}
}
