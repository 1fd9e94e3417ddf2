package lab

import (
	"fmt"
	"time"

	"github.com/punchdrop/punchdrop/lab/linkem"
)

// offloads are the interface features turned off on every interface an
// emulated link touches: with checksum offload on, frames that cross a
// packet socket carry partial checksums and TCP and UDP drop them (ping
// still works, which hides it); with segmentation offload on, the link
// would see 64 KB frames instead of packets (FACTS.md).
var offloads = []string{"tx", "off", "rx", "off", "gro", "off", "gso", "off", "tso", "off", "tx-udp-segmentation", "off"}

// buildLink wires the router's wan0 to the internet bridge's port
// through a namespace of its own, "<lab>-lN", where a linkem.Link bridges
// its two interfaces, la (towards the router) and lb (towards the
// internet).
func (s *Site) buildLink(port string) error {
	l := s.lab
	ns := fmt.Sprintf("%s-l%d", l.prefix, s.n)
	if err := l.addNamespace(ns); err != nil {
		return err
	}
	steps := []struct {
		ns   string
		args []string
	}{
		{s.router, []string{"link", "add", "wan0", "type", "veth", "peer", "name", "la", "netns", ns}},
		{ns, []string{"link", "add", "lb", "type", "veth", "peer", "name", port, "netns", l.inet}},
		{ns, []string{"link", "set", "la", "up"}},
		{ns, []string{"link", "set", "lb", "up"}},
	}
	for _, st := range steps {
		if err := ipIn(st.ns, st.args...); err != nil {
			return err
		}
	}
	for _, dev := range []struct{ ns, name string }{{s.router, "wan0"}, {ns, "la"}, {ns, "lb"}, {l.inet, port}} {
		if out, err := execIn(dev.ns, append([]string{"ethtool", "-K", dev.name}, offloads...)...); err != nil {
			return fmt.Errorf("turn offloads off on %s: %w (%s)", dev.name, err, out)
		}
	}
	err := inNamespace(ns, func() (err error) {
		s.link, err = linkem.Start("la", "lb", linkem.Config{})
		return err
	})
	if err != nil {
		return fmt.Errorf("start link: %w", err)
	}
	l.pushUndo(s.link.Close)
	return nil
}

// linkReadyTimeout bounds the wait for a new emulated link to carry
// traffic: its interfaces take a moment to come up after they are made.
const linkReadyTimeout = 5 * time.Second

// waitOnline returns once the router reaches the internet (the STUN
// server's address answers a ping), so that the first packets of a test
// do not wait out an ARP retry while the link's interfaces come up.
func (s *Site) waitOnline() error {
	deadline := time.Now().Add(linkReadyTimeout)
	for {
		_, err := execIn(s.router, "ping", "-n", "-q", "-c", "1", "-W", "1", stunPrimary.String())
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the emulated link carries nothing after %s: %w", linkReadyTimeout, err)
		}
	}
}

// SetLink shapes the site's emulated link: Up is what the site sends,
// Down what it receives. Only a site made by NewLinkedSite has one.
func (s *Site) SetLink(cfg linkem.Config) error {
	if s.link == nil {
		return fmt.Errorf("set link: site %d has no emulated link (NewLinkedSite makes one)", s.n)
	}
	return s.link.Set(cfg)
}

// LinkStats returns what the emulated link did to frames each way.
func (s *Site) LinkStats() (up, down linkem.Stats) {
	if s.link == nil {
		return linkem.Stats{}, linkem.Stats{}
	}
	return s.link.Stats()
}
