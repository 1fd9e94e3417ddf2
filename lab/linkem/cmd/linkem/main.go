// Command linkem bridges two network interfaces through an emulated link
// (delay, jitter, loss, reordering, rate, each way), for trying things by
// hand in the NAT lab, where the kernel has no netem:
//
//	ip netns exec LINKNS linkem -a la -b lb -up 'delay=25ms loss=1%' -down 'delay=25ms rate=100mbit'
//
// It runs until interrupted and then prints what each direction did. The
// lab's NewLinkedSite makes such a link itself, shaped by Site.SetLink.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/punchdrop/punchdrop/lab/linkem"
)

func main() {
	a := flag.String("a", "", "the interface on one side (frames from it go \"up\")")
	b := flag.String("b", "", "the interface on the other side")
	up := flag.String("up", "", "shape of the a→b direction, e.g. 'delay=25ms jitter=2ms loss=0.5% rate=100mbit'")
	down := flag.String("down", "", "shape of the b→a direction")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: linkem -a IF -b IF [-up SHAPE] [-down SHAPE]\n\n"+
			"A shape is space-separated settings: delay=25ms jitter=2ms loss=0.5%% burst=GoodToBad/BadToGood/LossBad\n"+
			"reorder=1%% rate=100mbit queue=50ms. Both interfaces must carry nothing else.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *a == "" || *b == "" {
		flag.Usage()
		os.Exit(2)
	}
	var cfg linkem.Config
	var err error
	if cfg.Up, err = linkem.ParseShape(*up); err == nil {
		cfg.Down, err = linkem.ParseShape(*down)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "linkem:", err)
		os.Exit(2)
	}
	link, err := linkem.Start(*a, *b, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "linkem:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	link.Close()
	u, d := link.Stats()
	fmt.Printf("up   %+v\ndown %+v\n", u, d)
}
