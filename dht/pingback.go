package dht

import (
	"net"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
)

// Ping-back: a node that queries us enters our routing table as
// "questionable", and BEP 5 lets us tell others only of "good" nodes,
// those that answered one of our queries. The library pings questionable
// nodes once a minute, so in a private DHT of a few nodes the first one
// would tell nobody of anybody for a minute. While the routing table is
// small, a node pings each new node that queries it at once.
const (
	// pingBackBelow is the number of good nodes under which a node pings
	// back: a private DHT converges at once, while on the mainline DHT,
	// where a table holds a hundred good nodes within a minute of joining,
	// a node stops adding traffic of its own.
	pingBackBelow = 64
	// pingBackEvery is how long a node waits before pinging the same
	// address back again: BEP 5's 15 minutes that keep a node good.
	pingBackEvery = 15 * time.Minute
	// pingBackQueue bounds the queries waiting for a ping-back; more
	// are dropped (the minute's maintenance pings them later).
	pingBackQueue = 64
	// pingBackRemember bounds the addresses remembered as pinged; the
	// memory is cleared when it is full.
	pingBackRemember = 1024
)

// onQuery is the library's hook for received queries. It runs under the
// server's lock, so it only mends the query and queues the source.
func (n *Node) onQuery(query *krpc.Msg, source net.Addr) bool {
	// The library answers "find_node" and "get" with the nodes closest to
	// the query's info_hash, which those queries do not have: without this
	// every answer lists the nodes nearest the zero ID, whatever the
	// target. The hook's query is the one the library goes on to answer.
	if a := query.A; a != nil && (query.Q == "find_node" || query.Q == "get") {
		a.InfoHash = a.Target
	}
	select {
	case n.pingBacks <- source:
	default:
	}
	return true
}

// pingBackLoop pings the sources queued by onQuery while the routing
// table has few good nodes, until the node closes.
func (n *Node) pingBackLoop() {
	pinged := map[string]time.Time{}
	for {
		select {
		case <-n.done:
			return
		case source := <-n.pingBacks:
			udp, ok := source.(*net.UDPAddr)
			if !ok || n.server.Stats().GoodNodes >= pingBackBelow {
				continue
			}
			key := udp.String()
			if at, ok := pinged[key]; ok && time.Since(at) < pingBackEvery {
				continue
			}
			if len(pinged) >= pingBackRemember {
				clear(pinged)
			}
			pinged[key] = time.Now()
			go n.server.Ping(udp)
		}
	}
}
