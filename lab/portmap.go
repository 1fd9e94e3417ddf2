package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// miniupnpdStopTimeout is how long SIGTERM gets before SIGKILL; on
// SIGTERM miniupnpd removes the mappings it made.
const miniupnpdStopTimeout = 3 * time.Second

// miniupnpdReadyWait is how long miniupnpd gets to start listening; it
// binds its sockets before it forks nothing (-d), within milliseconds.
const miniupnpdReadyWait = 500 * time.Millisecond

// PortMapper is miniupnpd on a site's router: UPnP IGD, NAT-PMP and PCP
// on the LAN side, mapping ports through the router's NAT.
type PortMapper struct {
	site *Site
	dir  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
}

// miniupnpdChains are the iptables chains miniupnpd fills, each hooked
// at the head of the built-in chain it extends (what Debian's
// iptables_init.sh sets up): DNAT of mapped ports, their FORWARD accept
// (before the router's drop of unsolicited traffic), and the rule that
// keeps a mapped port's outgoing packets on their external port even
// behind a NAT that picks random ports.
var miniupnpdChains = [][]string{
	{"-t", "nat", "-N", "MINIUPNPD"},
	{"-t", "nat", "-I", "PREROUTING", "-i", "wan0", "-j", "MINIUPNPD"},
	{"-t", "filter", "-N", "MINIUPNPD"},
	{"-t", "filter", "-I", "FORWARD", "-i", "wan0", "!", "-o", "wan0", "-j", "MINIUPNPD"},
	{"-t", "nat", "-N", "MINIUPNPD-POSTROUTING"},
	{"-t", "nat", "-I", "POSTROUTING", "-o", "wan0", "-j", "MINIUPNPD-POSTROUTING"},
	{"-t", "mangle", "-N", "MINIUPNPD"},
	{"-t", "mangle", "-I", "PREROUTING", "-i", "wan0", "-j", "MINIUPNPD"},
}

// PortMapperProtocols says which protocols a port mapper answers; the
// zero value means all of them.
type PortMapperProtocols struct {
	NoUPnP bool
	// NoNATPMP turns PCP off too: miniupnpd serves both on one socket.
	NoNATPMP bool
}

// StartPortMapper runs miniupnpd on the site's router, answering PCP,
// NAT-PMP and UPnP (StartPortMapperWith).
func (s *Site) StartPortMapper(ctx context.Context) (*PortMapper, error) {
	return s.StartPortMapperWith(ctx, PortMapperProtocols{})
}

// StartPortMapperWith runs miniupnpd on the site's router with the
// protocols given, mapping ports for its hosts only, until the lab closes
// (or Close).
func (s *Site) StartPortMapperWith(ctx context.Context, protocols PortMapperProtocols) (*PortMapper, error) {
	if s.router == "" {
		return nil, fmt.Errorf("port mapper: a %s site has no router", s.kind)
	}
	// miniupnpd learns its address by STUN, from the router itself,
	// and decides whether port forwarding can work from which answers
	// get through, those from the server's other address included: a
	// router that drops what reaches its own wan0 would look like one
	// behind a strict NAT.
	stunAnswers := [][]string{
		{"-I", "INPUT", "-i", "wan0", "-p", "udp", "-s", stunPrimary.String(), "-j", "ACCEPT"},
		{"-I", "INPUT", "-i", "wan0", "-p", "udp", "-s", stunAlternate.String(), "-j", "ACCEPT"},
	}
	if err := s.iptables(append(slices.Clone(miniupnpdChains), stunAnswers...)...); err != nil {
		return nil, fmt.Errorf("port mapper: %w", err)
	}
	dir, err := os.MkdirTemp("", "punchdrop-miniupnpd-")
	if err != nil {
		return nil, fmt.Errorf("port mapper: %w", err)
	}
	lan := fmt.Sprintf("198.19.%d.0/24", s.n)
	conf := strings.Join([]string{
		"ext_ifname=wan0",
		"listening_ip=br-lan",
		"port=5000",
		"enable_natpmp=" + yesNo(!protocols.NoNATPMP),
		"enable_upnp=" + yesNo(!protocols.NoUPnP),
		// The lab's WAN addresses are reserved (198.18.0.0/15), and this
		// miniupnpd (2.3.1) refuses a reserved ext_ip outright; asked to
		// learn its address by STUN instead, it sees no NAT above it and
		// maps ports.
		"ext_perform_stun=yes",
		"ext_stun_host=" + stunPrimary.String(),
		"ext_stun_port=" + strconv.Itoa(STUNPort),
		"secure_mode=yes",
		"system_uptime=yes",
		"notify_interval=60",
		"uuid=3e7a5c1d-6b1f-4a51-9d3f-0000000000" + fmt.Sprintf("%02x", s.n),
		"allow 1024-65535 " + lan + " 1024-65535",
		"deny 0-65535 0.0.0.0/0 0-65535",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "miniupnpd.conf"), []byte(conf), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("port mapper: %w", err)
	}
	pm := &PortMapper{site: s, dir: dir, log: &bytes.Buffer{}, done: make(chan struct{})}
	pm.cmd = commandIn(context.Background(), s.router, "miniupnpd", "-d", "-f", filepath.Join(dir, "miniupnpd.conf"), "-P", filepath.Join(dir, "miniupnpd.pid"))
	pm.cmd.Stdout, pm.cmd.Stderr = pm.log, pm.log
	if err := pm.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("port mapper: %w", err)
	}
	go func() { pm.cmd.Wait(); close(pm.done) }()
	select {
	case <-pm.done:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("port mapper: miniupnpd exited:\n%s", pm.log)
	case <-ctx.Done():
		pm.Close()
		return nil, ctx.Err()
	case <-time.After(miniupnpdReadyWait):
	}
	s.lab.pushUndo(pm.Close)
	return pm, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Close stops miniupnpd by its PID (it removes its mappings) and its
// files.
func (pm *PortMapper) Close() error {
	if pm.cmd != nil {
		pm.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-pm.done:
		case <-time.After(miniupnpdStopTimeout):
			pm.cmd.Process.Kill()
			<-pm.done
		}
		pm.cmd = nil
	}
	return os.RemoveAll(pm.dir)
}

// Log is what miniupnpd printed so far.
func (pm *PortMapper) Log() string { return pm.log.String() }

// Mappings lists the port mappings miniupnpd holds now, one
// "udp -> INTERNAL_IP:PORT" per mapping: what the router forwards,
// whichever protocol asked for it. They are read from the rules that let
// the forwarded packets through its filter table (the nat table's DNAT
// rules are written with a target revision this host's iptables cannot
// print).
func (pm *PortMapper) Mappings() ([]string, error) {
	out, err := pm.site.Exec(iptablesCmd, "-w", "-t", "filter", "-S", "MINIUPNPD")
	if err != nil {
		return nil, fmt.Errorf("list port mappings: %w: %s", err, out)
	}
	return parseMappings(string(out)), nil
}

// parseMappings reads the accept rules of iptables -S output, such as
// "-A MINIUPNPD -d 198.19.1.10/32 -p udp -m udp --dport 40155 -j ACCEPT".
func parseMappings(rules string) []string {
	var out []string
	for _, line := range strings.Split(rules, "\n") {
		f := strings.Fields(line)
		var proto, port, to string
		for i := 0; i+1 < len(f); i++ {
			switch f[i] {
			case "-p":
				proto = f[i+1]
			case "--dport":
				port = f[i+1]
			case "-d":
				to = strings.TrimSuffix(f[i+1], "/32")
			}
		}
		if proto != "" && port != "" && to != "" {
			out = append(out, proto+" -> "+to+":"+port)
		}
	}
	return out
}
