package dht

import (
	"net"
	"sync"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/int160"
)

// meetBelow is the routing-table size up to which a node, once
// bootstrapped, meets the neighbourhood of every node it knows. The
// library answers a lookup only with nodes from the target's bucket and
// the buckets farther from itself, so in a private DHT a joining node
// learns of some nodes and never of others; asking each node for the
// nodes nearest to itself (which spans all its buckets) and pinging the
// new ones completes the mesh of a small DHT. A node joining the mainline
// DHT holds more than 16 nodes after its bootstrap and skips this.
const meetBelow = 2 * closestK

// meet asks each node of a small routing table for its own neighbours and
// pings those this node does not know yet, so that they add each other.
func (n *Node) meet() {
	known := n.server.Nodes()
	if len(known) > meetBelow {
		return
	}
	seen := map[string]bool{}
	for _, ni := range known {
		seen[ni.Addr.String()] = true
	}
	var mu sync.Mutex // guards seen
	var wg sync.WaitGroup
	for _, ni := range known {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := n.server.FindNode(adht.NewAddr(ni.Addr.UDP()), int160.FromByteArray(ni.ID), adht.QueryRateLimiting{})
			r := res.Reply.R
			if res.Err != nil || r == nil {
				return
			}
			var fresh []*net.UDPAddr
			mu.Lock()
			for _, m := range append(r.Nodes, onlyIPv6(r.Nodes6)...) {
				key := m.Addr.String()
				if m.ID == n.server.ID() || seen[key] {
					continue
				}
				seen[key] = true
				fresh = append(fresh, m.Addr.UDP())
			}
			mu.Unlock()
			for _, addr := range fresh {
				n.server.Ping(addr)
			}
		}()
	}
	wg.Wait()
}
