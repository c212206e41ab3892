package main

import (
	"flag"
	"fmt"
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
// Not parallel: every daemon gives its first container 203.0.113.2, and diagnose matches a
// drop in a namespace downstream by the translated address, so one Docker test's drop
// (DOCKER-USER's) is taken for another's (see the report of branch docker-e2e).
func dockerScenario(t *testing.T, tag string) (*scenario, *testns.Docker) {
	t.Helper()
	if *noDocker {
		t.Skip("-no-docker: the Docker tests run in the host job (make test), not in the 6.1 VM's")
	}
	s := newScenario(t, tag, false, "tcp")
	return s, s.pair.StartDocker(t)
}

// A port published to a container where nothing listens: the kernel drops the SYN in the
// container's namespace, and the verdict says so, with Docker's DNAT and the container by
// its Docker name (found under the daemon's own --data-root, not /var/lib/docker), and the
// fix quotes the mapping that leads to the container's port.
func TestE2EDockerPublishedNoListener(t *testing.T) {
	s, d := dockerScenario(t, "dkn")
	name := testns.Name("web")
	id := d.Run(t, name, s.port, "sleep", "600")
	to := d.IP(t, name) + ":80"
	rep := s.diagnose(t, "", s.fromClient(connect))
	if *dockerReport != "" {
		saveMarkdown(t, rep, *dockerReport)
	}
	container := fmt.Sprintf("container %s (docker, id %s)", name, id[:12])
	expectDNATNoListener(t, rep, to, container, container)
	if want := fmt.Sprintf("; the port is published as %d->%d", s.port, testns.DockerPort); !strings.Contains(rep.Verdict.Fix, want) {
		t.Errorf("fix %q does not say %q", rep.Verdict.Fix, want)
	}
}

// A published port with a listener in the container: the flow is delivered there, which
// the verdict says, not that this host forwarded it (the answers go out via veth0) nor that
// it was dropped.
func TestE2EDockerPublishedListener(t *testing.T) {
	s, d := dockerScenario(t, "dkl")
	name := testns.Name("echo")
	id := d.Run(t, name, s.port, "nc", "-ll", "-p", "80", "-e", "cat")
	d.WaitListening(t, name)
	rep := s.diagnose(t, "", s.fromClient(connect))
	expect(t, rep, verdict.Delivered, verdict.Socket, "")
	container := fmt.Sprintf("container %s (docker, id %s)", name, id[:12])
	if !strings.Contains(rep.Verdict.Summary, container) {
		t.Errorf("summary %q does not say where it was delivered (%s)", rep.Verdict.Summary, container)
	}
}

// A DROP rule in DOCKER-USER, the chain Docker leaves to its users: the verdict is a
// firewall drop in forward, in Docker's table ip filter, chain DOCKER-USER.
func TestE2EDockerUserDrop(t *testing.T) {
	s, d := dockerScenario(t, "dku")
	name := testns.Name("web")
	d.Run(t, name, s.port, "nc", "-ll", "-p", "80", "-e", "cat")
	d.WaitListening(t, name)
	s.pair.InServer(t, testns.Tool(t, "iptables"), "-I", "DOCKER-USER", "-p", "tcp", "--dport", "80", "-j", "DROP")
	rep := s.diagnose(t, "", s.fromClient(connect))
	expect(t, rep, verdict.Dropped, verdict.Forward, "NETFILTER_DROP")
	// The rule's text is not required: iptables-nft's xt matches may be undecoded.
	if r := rep.Verdict.Rule; r == nil || r.Family != "ip" || r.Table != "filter" || r.Chain != "DOCKER-USER" {
		t.Errorf("rule %+v, want one of chain DOCKER-USER in table ip filter", r)
	}
	if !strings.Contains(rep.Verdict.Summary, "DOCKER-USER") {
		t.Errorf("summary %q does not name chain DOCKER-USER", rep.Verdict.Summary)
	}
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
