// Package dht runs a node of the BitTorrent mainline DHT (BEP 5) on a UDP
// socket of its own, and puts and gets BEP 44 mutable items, the carriers
// of rendezvous records. It is a thin layer over
// github.com/anacrolix/dht/v2.
//
// A Node both asks and answers: it keeps a routing table, answers other
// nodes' queries, and stores the items they put (every anacrolix server
// does; this package gives it a bounded store with expiry and a hook that
// sees each stored item). A few Nodes that bootstrap from one another form
// a private DHT: that is what "punchdrop dht-node" runs, and what the tests
// build on loopback.
//
// Nothing here reaches the public DHT unless told to: a Node bootstraps
// only from Config.Bootstrap, and DefaultBootstrap is never used unless a
// caller passes it.
//
// # Where this package departs from the library
//
//   - Put and Get run their own lookups: the library's exts/getput
//     dereferences a reply's "seq" without checking it is there, so a
//     remote node could crash us with one datagram.
//   - A node mends each "find_node" and "get" query before the library
//     answers it (onQuery): the library picks the nodes it returns by the
//     query's info_hash, which those queries lack, so every answer listed
//     the nodes nearest the zero ID. It pings back nodes that query it
//     while its table is small, and after bootstrapping asks each node of
//     a small table for its neighbours (meet), so a private DHT of a few
//     nodes meshes at once instead of after minutes.
//   - Lookups drop IPv4 nodes from "nodes6" lists (the library lists each
//     IPv4 node there again, as an IPv4-mapped address, and would ask it
//     twice) and never ask the node itself.
//   - Datagrams that are not KRPC messages are dropped before the library
//     sees them: it prints each malformed one to stderr through its
//     package-wide logger, whatever logger it is given.
//   - Each node has its own send limiter (the library shares one among all
//     servers of a process), a store bounded in size with expiry (the
//     library's grows without bound and expires items only when asked for
//     them), and logs through log/slog.
//   - go.mod asks for github.com/anacrolix/multiless v0.4.0 and
//     github.com/anacrolix/sync v0.5.4, the first versions with a license
//     file (MPL-2.0); dht v2.23.0 asks for older ones that have none.
package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/int160"
	"golang.org/x/time/rate"

	"github.com/punchdrop/punchdrop/rendezvous"
)

// Limits and timings of a node.
const (
	// sendRate and sendBurst bound the datagrams a node sends per second,
	// queries and answers together; answers beyond them are dropped, so a
	// flood of queries cannot make a node send more than about 25 KB/s
	// (messages are mostly under 500 bytes). The burst covers a node's
	// busiest moment, joining: a bootstrap lookup, pings back to the
	// nodes that answer, and answers to their pings. The library's default
	// (25/s, burst 25, shared by all servers of a process) dropped
	// answers while five loopback nodes joined.
	sendRate  = 50
	sendBurst = 100
	// bootstrapResolveTimeout bounds the DNS lookups of the bootstrap
	// nodes' names each time the routing table is empty.
	bootstrapResolveTimeout = 10 * time.Second
)

// DefaultBootstrap returns the well-known routers of the mainline DHT, the
// default of the agent's dht_bootstrap setting. Never used in tests.
func DefaultBootstrap() []string {
	return []string{
		"router.bittorrent.com:6881",
		"router.utorrent.com:6881",
		"dht.transmissionbt.com:6881",
		"dht.libtorrent.org:25401",
	}
}

// Config says how to run a Node.
type Config struct {
	// Conn is the node's socket. The Node owns it from then on: it closes
	// it, and nothing else may read from or close it (the library panics
	// if its socket fails under it). If nil, the Node listens on Listen.
	Conn net.PacketConn
	// Listen is the UDP address to listen on when Conn is nil ("host:port";
	// empty means any address, a random port).
	Listen string
	// Bootstrap lists the nodes to join the DHT through, as "host:port".
	// Empty: the node joins nobody, and learns of nodes only when they
	// contact it (the first node of a private DHT).
	Bootstrap []string
	// Logger receives the node's logs; the library's own messages come at
	// debug level. If nil, slog.Default() is used.
	Logger *slog.Logger
	// OnStore, if non-nil, is called with each item the node stores, its
	// own puts included, after BEP 44's checks passed. It runs while the
	// node holds its lock: it must not block or call the Node.
	OnStore func(StoredItem)
	// ReadOnly makes the node ask but never answer (BEP 43): its queries
	// say so, and other nodes leave it out of their routing tables. It
	// suits a node behind a NAT that drops unsolicited datagrams (others
	// could not reach it anyway, and would waste a timeout on each try),
	// and one that should cost nothing while idle. It stores nothing for
	// others.
	ReadOnly bool
	// MaxItems bounds the items the node stores; 0 means DefaultMaxItems.
	MaxItems int
	// ItemLifetime is how long a stored item is kept after its last put;
	// 0 means rendezvous.ItemLifetime (BEP 44's two hours).
	ItemLifetime time.Duration
}

// ErrClosed is returned by operations on a closed Node.
var ErrClosed = errors.New("dht node closed")

// Node is a running DHT node.
type Node struct {
	server    *adht.Server
	id        int160.T // the node's DHT ID
	conn      *countingConn
	store     *itemStore
	log       *slog.Logger
	bootstrap []string
	resolver  *net.Resolver

	bootstrapped chan struct{} // closed when the first bootstrap is over
	bootErr      error         // its result; read after bootstrapped is closed
	pingBacks    chan net.Addr // sources of queries, for pingBackLoop
	done         chan struct{} // closed by Close

	mu     sync.Mutex // guards following
	lastOp OpStats
	closed bool
}

// New starts a node: it answers queries at once, bootstraps in the
// background (Bootstrapped tells when that is over), then keeps its
// routing table fresh until Close.
func New(cfg Config) (*Node, error) {
	for _, hp := range cfg.Bootstrap {
		if err := CheckBootstrap(hp); err != nil {
			return nil, err
		}
	}
	conn := cfg.Conn
	if conn == nil {
		listen := cfg.Listen
		if listen == "" {
			listen = ":0"
		}
		var err error
		if conn, err = net.ListenPacket("udp", listen); err != nil {
			return nil, fmt.Errorf("dht: listen: %w", err)
		}
	}
	n := &Node{
		conn:         &countingConn{PacketConn: conn},
		log:          cfg.Logger,
		bootstrap:    cfg.Bootstrap,
		resolver:     net.DefaultResolver,
		bootstrapped: make(chan struct{}),
		pingBacks:    make(chan net.Addr, pingBackQueue),
		done:         make(chan struct{}),
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	maxItems, lifetime := cfg.MaxItems, cfg.ItemLifetime
	if maxItems <= 0 {
		maxItems = DefaultMaxItems
	}
	if lifetime <= 0 {
		lifetime = rendezvous.ItemLifetime
	}
	n.store = newItemStore(maxItems, lifetime, cfg.OnStore)
	server, err := adht.NewServer(&adht.ServerConfig{
		Conn: n.conn,
		// Node IDs bound to the IP address (BEP 42) would make every node
		// of a private network in public address space, such as the
		// lab's, refuse the others.
		NoSecurity:    true,
		StartingNodes: n.startingNodes,
		Store:         n.store,
		Exp:           lifetime,
		Logger:        libraryLogger(n.log),
		SendLimiter:   rate.NewLimiter(sendRate, sendBurst),
		OnQuery:       n.onQuery,
		Passive:       cfg.ReadOnly,
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dht: %w", err)
	}
	n.server = server
	n.id = int160.FromByteArray(server.ID())
	n.log.Info("dht node started", "addr", conn.LocalAddr().String(), "bootstrap", len(cfg.Bootstrap), "read_only", cfg.ReadOnly)
	go n.maintain()
	if !cfg.ReadOnly {
		go n.pingBackLoop()
	}
	return n, nil
}

// maintain bootstraps once (and meets the neighbours in a small DHT, see
// meet), then leaves the routing table to the
// library's maintainer: each minute it pings nodes it has not heard from,
// refreshes buckets that are not full, and bootstraps again every half
// hour.
func (n *Node) maintain() {
	if len(n.bootstrap) > 0 {
		start := time.Now()
		stats, err := n.server.Bootstrap()
		n.bootErr = err
		n.setLastOp(OpStats{Op: "bootstrap", Started: start, Took: time.Since(start),
			Queried: int(stats.NumAddrsTried), Answered: int(stats.NumResponses)})
		if err != nil {
			n.log.Warn("dht bootstrap failed", "err", err)
		} else {
			n.meet()
			n.log.Info("dht bootstrapped", "answered", stats.NumResponses, "nodes", n.server.NumNodes(), "took", time.Since(start).Round(time.Millisecond))
		}
	}
	close(n.bootstrapped)
	n.server.TableMaintainer()
}

// Bootstrapped is closed when the node's first bootstrap is over (at once
// when it has no bootstrap nodes); BootstrapErr then says how it went.
func (n *Node) Bootstrapped() <-chan struct{} { return n.bootstrapped }

// BootstrapErr returns the error of the first bootstrap, nil if it went
// well or has not ended (see Bootstrapped).
func (n *Node) BootstrapErr() error {
	select {
	case <-n.bootstrapped:
		return n.bootErr
	default:
		return nil
	}
}

// startingNodes resolves the bootstrap nodes; the library calls it
// whenever its routing table is empty.
func (n *Node) startingNodes() ([]adht.Addr, error) {
	if len(n.bootstrap) == 0 {
		return nil, errors.New("no bootstrap nodes configured")
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootstrapResolveTimeout)
	defer cancel()
	var addrs []adht.Addr
	for _, hp := range n.bootstrap {
		host, portStr, _ := net.SplitHostPort(hp) // checked by New
		port, _ := strconv.ParseUint(portStr, 10, 16)
		ips, err := n.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			n.log.Debug("dht bootstrap node does not resolve", "node", hp, "err", err)
			continue
		}
		for _, ip := range ips {
			addrs = append(addrs, adht.NewAddr(net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(port)))))
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("none of %d bootstrap nodes resolves", len(n.bootstrap))
	}
	return addrs, nil
}

// CheckBootstrap refuses a bootstrap node address that is not
// "host:port", as New does; a configuration checks its list with it.
func CheckBootstrap(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err == nil && host == "" {
		err = errors.New("no host")
	}
	if err == nil {
		if p, perr := strconv.ParseUint(port, 10, 16); perr != nil || p == 0 {
			err = fmt.Errorf("bad port %q", port)
		}
	}
	if err != nil {
		return fmt.Errorf("dht: bootstrap node %q: %w", hp, err)
	}
	return nil
}

// Addr returns the node's UDP address.
func (n *Node) Addr() net.Addr { return n.conn.LocalAddr() }

// Close stops the node and closes its socket.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	close(n.done)
	n.server.Close() // closes the socket
	return nil
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}
