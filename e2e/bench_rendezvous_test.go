package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/lab"
)

// refindTrials is how many times both peers move; the issue asks for the
// median of 5.
const refindTrials = 5

// BenchmarkRefindBothMoved measures issue 13's case (a) refindTrials
// times in one lab with a private DHT of three nodes: two peers behind
// port-restricted NATs stop, both start again behind new ones, and the
// time from the second start until both report the other connected is
// taken from their event streams. It prints the median, and the medians
// of the agents' puts and of the lookups that found the other.
func BenchmarkRefindBothMoved(b *testing.B) {
	d := newDHTLab(b)
	var refind, puts, gets []time.Duration
	for trial := range refindTrials {
		a := d.start(b, lab.PortRestricted, "alice", "")
		c := d.start(b, lab.PortRestricted, "bob", "")
		connectPair(b, a, c)
		aliceID, bobID := a.nodeID(), c.nodeID()
		waitPeer(b, a, bobID, connectTimeout, "connect", connected)
		waitPublished(b, a)
		waitPublished(b, c)
		a.stop()
		c.stop()
		ha, hc := d.AddSite(lab.PortRestricted).AddHost(), d.AddSite(lab.PortRestricted).AddHost()
		ctx, cancel := context.WithTimeout(b.Context(), refindTimeout)
		a = startAgentIn(b, d.Lab, ha, "alice", a.home, d.flags()...)
		upA := connectedAt(b, ctx, a, bobID)
		start := time.Now()
		c = startAgentIn(b, d.Lab, hc, "bob", c.home, d.flags()...)
		upC := connectedAt(b, ctx, c, aliceID)
		ta, tc := <-upA, <-upC
		cancel()
		if ta.IsZero() || tc.IsZero() {
			b.Fatalf("trial %d: not connected within %s of both starting", trial, refindTimeout)
		}
		if tc.After(ta) {
			ta = tc
		}
		refind = append(refind, ta.Sub(start))
		for _, x := range [][2]*agentProc{{a, c}, {c, a}} {
			puts = append(puts, time.Duration(waitPublished(b, x[0]).TookMs)*time.Millisecond)
			if l := x[0].peer(x[1].nodeID()).DHTLookup; l != nil && l.Result == "found" {
				gets = append(gets, time.Duration(l.TookMs)*time.Millisecond)
			}
		}
		a.stop()
		c.stop()
	}
	median := func(ds []time.Duration) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	b.ReportMetric(median(refind).Seconds(), "s-refind-median")
	b.ReportMetric(float64(median(puts).Microseconds())/1000, "ms-put-median")
	b.ReportMetric(float64(median(gets).Microseconds())/1000, "ms-lookup-median")
	fmt.Fprintf(os.Stdout, "refind after both moved: median %.1f s (runs %v); put median %v (%v); lookup median %v (%v)\n",
		median(refind).Seconds(), refind, median(puts), puts, median(gets), gets)
}

// BenchmarkDHTIdle measures what the DHT costs an idle agent: one agent
// with the DHT (joined to the lab's three DHT nodes) and one without, no
// peers, for PUNCHDROP_DHT_IDLE (default three minutes). It reports the
// first one's DHT datagrams and bytes both ways, and the difference of
// the two agents' CPU time, each extrapolated to an hour. The DHT
// library's upkeep runs once a minute, pings nodes quiet for 15 minutes
// and bootstraps again every half hour, and the record is put again
// every half hour: a window of 20 minutes or more sees all but the last.
// Run with -benchtime 1x.
func BenchmarkDHTIdle(b *testing.B) {
	idle := 3 * time.Minute
	if s := os.Getenv("PUNCHDROP_DHT_IDLE"); s != "" {
		var err error
		if idle, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	d := newDHTLab(b)
	with := d.start(b, lab.PortRestricted, "with-dht", "")
	without := startAgent(b, d.Lab, d.AddSite(lab.PortRestricted).AddHost(), "without-dht")
	put := waitPublished(b, with)
	before := with.natInfo().DHT
	cpuWith, cpuWithout := processCPU(b, with), processCPU(b, without)
	time.Sleep(idle)
	after := with.natInfo().DHT
	dWith, dWithout := processCPU(b, with)-cpuWith, processCPU(b, without)-cpuWithout
	perHour := float64(time.Hour) / float64(idle)
	sentP, sentB := after.Sent.Packets-before.Sent.Packets, after.Sent.Bytes-before.Sent.Bytes
	recvP, recvB := after.Received.Packets-before.Received.Packets, after.Received.Bytes-before.Received.Bytes
	b.ReportMetric(float64(sentP)*perHour, "sent-pkts/hour")
	b.ReportMetric(float64(sentB)*perHour, "sent-B/hour")
	b.ReportMetric(float64(recvP)*perHour, "recv-pkts/hour")
	b.ReportMetric(float64(recvB)*perHour, "recv-B/hour")
	b.ReportMetric((dWith-dWithout).Seconds()*perHour, "cpu-s/hour")
	fmt.Fprintf(os.Stdout, "DHT idle over %v: sent %d datagrams (%d B), received %d (%d B); CPU %v with the DHT, %v without; first put took %d ms, stored on %d nodes\n",
		idle, sentP, sentB, recvP, recvB, dWith, dWithout, put.TookMs, put.Stored)
}

// processCPU returns the user and system CPU time of a's process so far,
// from /proc/PID/stat (fields 14 and 15, in ticks of 1/100 s).
func processCPU(b *testing.B, a *agentProc) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
