package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/internal/testns"
)

// hostDump is everything diagnose might leave behind, host-wide and in the namespace it
// ran in. BPF programs and links are held by diagnose's file descriptors and die with it;
// the ways they could outlive it are pins in bpffs, mounts, tracefs settings and the
// namespace's nftables and tc state, all of which are compared.
type hostDump map[string]string

func dumpHost(t *testing.T, ns string) hostDump {
	t.Helper()
	d := hostDump{}
	in := func(args ...string) string {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).Output()
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	d["nft ruleset (with counters)"] = in("nft", "list", "ruleset")
	d["tc qdiscs"] = in("tc", "qdisc", "show")
	d["tc ingress filters"] = in("tc", "filter", "show", "dev", testns.Iface, "ingress")
	d["mounts"] = mountsOf(t, "/proc/1/mountinfo")
	d["bpffs pins"] = listTree("/sys/fs/bpf")
	for _, f := range []string{"tracing_on", "current_tracer", "set_event", "trace_options", "events/skb/kfree_skb/enable",
		"events/skb/kfree_skb/filter", "events/skb/kfree_skb/trigger", "events/net/netif_receive_skb/enable"} {
		b, err := os.ReadFile(filepath.Join("/sys/kernel/tracing", f))
		if err == nil {
			d["tracefs "+f] = string(b)
		}
	}
	return d
}

// mountsOf lists the mount points and types, without the ids that change on remounts.
func mountsOf(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		// Namespace mounts come and go with the tests running in parallel.
		if f := strings.Fields(l); len(f) > 8 && !strings.HasPrefix(f[4], "/run/netns/") {
			lines = append(lines, f[4]+" "+f[len(f)-3])
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func listTree(root string) string {
	var paths []string
	_ = filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	return strings.Join(paths, "\n")
}

func (before hostDump) compare(t *testing.T, after hostDump) {
	t.Helper()
	for k, b := range before {
		if a := after[k]; a != b {
			t.Errorf("%s changed:\nbefore:\n%s\nafter:\n%s", k, b, a)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s appeared:\n%s", k, after[k])
		}
	}
}

// TestE2ELeavesHostAsFound ends diagnose every way it can end and compares full dumps
// of the host before and after. The namespace holds a user ruleset with counters and a
// qdisc, which must come out untouched. Serial, like every test that dumps the host: the
// parallel tests run after it, and would change the host under it.
func TestE2ELeavesHostAsFound(t *testing.T) {
	endings := []struct {
		name string
		args []string
		// signal is sent once diagnose is armed; 0 lets it end by itself.
		signal   syscall.Signal
		wantExit int
	}{
		{"normal end", []string{"--", "true"}, 0, exitOK},
		{"timeout", []string{"--timeout", "1s"}, 0, exitOK},
		{"ctrl-c", nil, syscall.SIGINT, exitOK},
		{"sigterm", nil, syscall.SIGTERM, exitOK},
		{"failing stage", []string{"--iface", "nosuchif0"}, 0, exitUsage},
		{"kill -9", nil, syscall.SIGKILL, -1},
	}
	s := newScenario(t, "lv", false, "tcp")
	s.nft(t, s.pair.Server, `table inet user {
	counter seen { }
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 22 counter accept
		udp dport 53 counter name "seen" accept
	}
}`)
	s.pair.InServer(t, "tc", "qdisc", "add", "dev", testns.Iface, "root", "tbf", "rate", "1gbit", "burst", "64kb", "latency", "50ms")
	for _, e := range endings {
		t.Run(e.name, func(t *testing.T) {
			before := dumpHost(t, s.pair.Server)
			args := append([]string{"netns", "exec", s.pair.Server, binary, "--flow", s.flowArg(), "--yes", "--format", "json", "--timeout", "30s"}, e.args...)
			cmd := exec.Command("ip", args...)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill() }()
			lines := collect(stderr)
			if e.signal != 0 {
				waitFor(t, lines, "armed")
				if err := cmd.Process.Signal(e.signal); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(40 * time.Second):
				t.Fatal("diagnose did not end")
			}
			code := exitStatus(err)
			if e.signal == syscall.SIGKILL {
				code = -1
			}
			if code != e.wantExit {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, e.wantExit, lines.String())
			}
			if e.wantExit == exitOK && !bytes.Contains(stdout.Bytes(), []byte(`"verdict"`)) {
				t.Errorf("no report written:\n%s", lines.String())
			}
			if e.wantExit != exitOK && e.wantExit != -1 {
				if last := lines.Last(); strings.Count(last, "\n") > 0 || !strings.HasPrefix(last, "diagnose: ") {
					t.Errorf("the error is not one line: %q", last)
				}
			}
			// The owner table goes when the kernel closes the socket: allow it a moment.
			deadline := time.Now().Add(3 * time.Second)
			for {
				after := dumpHost(t, s.pair.Server)
				if after["nft ruleset (with counters)"] == before["nft ruleset (with counters)"] || time.Now().After(deadline) {
					before.compare(t, after)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// lineLog collects a process's stderr lines as they come.
type lineLog struct {
	ch    chan string
	lines []string
}

func collect(r interface{ Read([]byte) (int, error) }) *lineLog {
	l := &lineLog{ch: make(chan string, 1000)}
	go func() {
		buf := make([]byte, 4096)
		var pending string
		for {
			n, err := r.Read(buf)
			pending += string(buf[:n])
			for {
				i := strings.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				l.ch <- pending[:i]
				pending = pending[i+1:]
			}
			if err != nil {
				if pending != "" {
					l.ch <- pending
				}
				close(l.ch)
				return
			}
		}
	}()
	return l
}

func (l *lineLog) drain() {
	for {
		select {
		case s, ok := <-l.ch:
			if !ok {
				return
			}
			l.lines = append(l.lines, s)
		default:
			return
		}
	}
}

func (l *lineLog) String() string { l.drain(); return strings.Join(l.lines, "\n") }

func (l *lineLog) Last() string {
	time.Sleep(50 * time.Millisecond)
	l.drain()
	if len(l.lines) == 0 {
		return ""
	}
	return l.lines[len(l.lines)-1]
}

func waitFor(t *testing.T, l *lineLog, text string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case s, ok := <-l.ch:
			if !ok {
				t.Fatalf("diagnose ended before %q:\n%s", text, strings.Join(l.lines, "\n"))
			}
			l.lines = append(l.lines, s)
			if strings.Contains(s, text) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q from diagnose within 20s:\n%s", text, strings.Join(l.lines, "\n"))
		}
	}
}

// TestE2EBadInterfaces: interfaces that do not exist or are down get one line that says
// which ones can be used, exit 2, and nothing left behind. Serial: it dumps the host.
func TestE2EBadInterfaces(t *testing.T) {
	s := newScenario(t, "bif", false, "tcp")
	s.pair.InServer(t, "ip", "link", "add", "down0", "type", "veth", "peer", "name", "down1")
	for _, c := range []struct{ iface, want string }{
		{"nosuchif0", `bad interface "nosuchif0": not in this network namespace (up: lo, veth0)`},
		{"down0", `bad interface "down0": it is down`},
	} {
		before := dumpHost(t, s.pair.Server)
		out, err := exec.Command("ip", "netns", "exec", s.pair.Server, binary, "--flow", s.flowArg(), "--yes", "--iface", c.iface, "--", "true").CombinedOutput()
		if exitStatus(err) != exitUsage || !strings.Contains(string(out), c.want) || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
			t.Errorf("--iface %s: exit %d\n%s\nwant exit %d and one line with %q", c.iface, exitStatus(err), out, exitUsage, c.want)
		}
		before.compare(t, dumpHost(t, s.pair.Server))
	}
}

// TestE2ENoBTF: on a kernel without BTF diagnose cannot relocate its programs; it says so
// in one line and exits 3. The kernel's BTF is hidden under a private mount to get there.
func TestE2ENoBTF(t *testing.T) {
	t.Parallel()
	testns.RequirePrivileges(t)
	script := `mount -t tmpfs none /sys/kernel/btf && exec "$0" --flow 127.0.0.1:9 --yes --timeout 1s -- true`
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, binary).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if exitStatus(err) != exitHost || len(lines) != 1 || !strings.Contains(lines[0], "BTF") {
		t.Errorf("without BTF: exit %d\n%s\nwant exit %d and one line about BTF", exitStatus(err), out, exitHost)
	}
}
