package dht_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/rendezvous"
)

// benchRest is the pause between two timed operations: a node may send
// sendRate datagrams a second with a burst of sendBurst, and a put or get
// back to back would measure that limit rather than the operation. An
// agent puts every half hour and looks up rarely; each operation starts
// with the burst refilled, as it does here.
const benchRest = 500 * time.Millisecond

// BenchmarkPut measures publishing a record in a five-node loopback DHT:
// seal (blind, encrypt, sign) and put, a lookup plus four puts.
func BenchmarkPut(b *testing.B) {
	d := startPrivateDHT(b, privateNodes)
	_, priv := newKey(b)
	now := time.Now()
	p := rendezvous.PeriodOf(now)
	seq := rendezvous.NextSeq(0, now)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		time.Sleep(benchRest)
		b.StartTimer()
		seq++
		it, err := rendezvous.Seal(priv, p, newRecord(seq, now))
		if err != nil {
			b.Fatal(err)
		}
		if stats, err := d.nodes[1].Put(ctx, it); err != nil || stats.Stored != privateNodes-1 {
			b.Fatalf("put: %v (%+v)", err, stats)
		}
	}
}

// BenchmarkGet measures looking a peer up in a five-node loopback DHT:
// blind its key, get the item, open the record.
func BenchmarkGet(b *testing.B) {
	d := startPrivateDHT(b, privateNodes)
	id, priv := newKey(b)
	now := time.Now()
	p := rendezvous.PeriodOf(now)
	it, err := rendezvous.Seal(priv, p, newRecord(rendezvous.NextSeq(0, now), now))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.nodes[1].Put(ctx, it); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		time.Sleep(benchRest)
		b.StartTimer()
		if _, stats, err := lookup(ctx, d.nodes[privateNodes-1], id, p, now, 0); err != nil {
			b.Fatalf("lookup: %v (%+v)", err, stats)
		}
	}
}

// BenchmarkIdle measures what a node costs when nobody uses it: five
// loopback nodes, one record stored, then PUNCHDROP_DHT_IDLE (default a
// minute) of nothing. It reports per node the datagrams and bytes sent and
// received, extrapolated to an hour, and the CPU time of the process (all
// five nodes) from /proc/self/stat, divided by five; and it logs the same
// for a sixth, read-only node, as an agent behind a NAT would run. Run it
// with -benchtime 1x: one run is the whole measurement. The library's
// maintenance runs once a minute and pings quiet nodes after 15 minutes,
// so a window of a minute or two may see nothing; 20 minutes sees both.
func BenchmarkIdle(b *testing.B) {
	idle := time.Minute
	if s := os.Getenv("PUNCHDROP_DHT_IDLE"); s != "" {
		var err error
		if idle, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		d := startPrivateDHT(b, privateNodes)
		now := time.Now()
		_, priv := newKey(b)
		it, err := rendezvous.Seal(priv, rendezvous.PeriodOf(now), newRecord(rendezvous.NextSeq(0, now), now))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.nodes[1].Put(context.Background(), it); err != nil {
			b.Fatal(err)
		}
		ro, err := dht.New(dht.Config{Listen: "127.0.0.9:0", Bootstrap: []string{d.nodes[0].Addr().String()}, ReadOnly: true, Logger: testLogger(b, "ro")})
		if err != nil {
			b.Fatal(err)
		}
		<-ro.Bootstrapped()
		roBefore := ro.Stats()
		before := make([]dht.Stats, len(d.nodes))
		for i, n := range d.nodes {
			before[i] = n.Stats()
		}
		cpuBefore, err := processCPU()
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(idle)
		cpuAfter, err := processCPU()
		if err != nil {
			b.Fatal(err)
		}
		perHour := float64(time.Hour) / float64(idle)
		var sentP, sentB, recvP, recvB uint64
		for i, n := range d.nodes {
			after := n.Stats()
			sentP += after.Sent.Packets - before[i].Sent.Packets
			sentB += after.Sent.Bytes - before[i].Sent.Bytes
			recvP += after.Received.Packets - before[i].Received.Packets
			recvB += after.Received.Bytes - before[i].Received.Bytes
			b.Logf("node %d over %v: sent %d datagrams (%d B), received %d (%d B), %d good nodes, %d items",
				i, idle, after.Sent.Packets-before[i].Sent.Packets, after.Sent.Bytes-before[i].Sent.Bytes,
				after.Received.Packets-before[i].Received.Packets, after.Received.Bytes-before[i].Received.Bytes,
				after.GoodNodes, after.Items)
		}
		roAfter := ro.Stats()
		b.Logf("read-only node over %v: sent %d datagrams (%d B), received %d (%d B)", idle,
			roAfter.Sent.Packets-roBefore.Sent.Packets, roAfter.Sent.Bytes-roBefore.Sent.Bytes,
			roAfter.Received.Packets-roBefore.Received.Packets, roAfter.Received.Bytes-roBefore.Received.Bytes)
		ro.Close()
		nodes := float64(len(d.nodes))
		b.ReportMetric(float64(sentP)/nodes*perHour, "sent-pkts/node-hour")
		b.ReportMetric(float64(sentB)/nodes*perHour, "sent-B/node-hour")
		b.ReportMetric(float64(recvP)/nodes*perHour, "recv-pkts/node-hour")
		b.ReportMetric(float64(recvB)/nodes*perHour, "recv-B/node-hour")
		b.ReportMetric((cpuAfter-cpuBefore).Seconds()/nodes*perHour, "cpu-s/node-hour")
		b.Logf("process CPU over %v: %v for %d nodes and the read-only one", idle, cpuAfter-cpuBefore, len(d.nodes))
	}
}

// processCPU returns the user and system CPU time of this process so far,
// from /proc/self/stat (fields 14 and 15, in clock ticks of 1/100 s: the
// USER_HZ that Linux reports there on every architecture Go supports).
func processCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// count fields after its closing parenthesis.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/self/stat: %d fields after the name", len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/self/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
