package dht

import "time"

// Stats describes a node now. It is plain data: "punchdrop nat" reports
// from it whether the DHT is reachable and how many nodes answered.
type Stats struct {
	// Nodes is how many nodes the routing table holds.
	Nodes int
	// GoodNodes is how many of them answered recently (BEP 5's "good").
	GoodNodes int
	// Items is how many items the node stores, for others and itself.
	Items int
	// LastOp is the last Put or Get, or the first bootstrap if there was
	// neither; its Op is empty if there was none of them.
	LastOp OpStats
	// Sent and Received count the node's traffic since it started.
	Sent, Received Traffic
	// Dropped counts received datagrams that were not KRPC messages.
	Dropped uint64
}

// OpStats describes one Put or Get, or a bootstrap.
type OpStats struct {
	// Op is "put", "get" or "bootstrap".
	Op string
	// Started is when it began; Took how long it ran.
	Started time.Time
	Took    time.Duration
	// Queried is how many nodes the traversal asked; Answered how many
	// of them answered. Answered == 0 means the DHT was not reachable.
	Queried, Answered int
	// Stored is, for a put, how many nodes acknowledged the put.
	Stored int
	// Found is, for a get, how many nodes returned a valid item.
	Found int
	// HighestSeq is the highest sequence number of a valid item seen at
	// the target, 0 if none.
	HighestSeq int64
}

// Stats returns the node's current figures.
func (n *Node) Stats() Stats {
	ss := n.server.Stats()
	n.mu.Lock()
	last := n.lastOp
	n.mu.Unlock()
	return Stats{
		Nodes:     ss.Nodes,
		GoodNodes: ss.GoodNodes,
		Items:     n.store.Len(),
		LastOp:    last,
		Sent:      n.conn.sent(),
		Received:  n.conn.received(),
		Dropped:   n.conn.dropped.Load(),
	}
}

func (n *Node) setLastOp(op OpStats) {
	n.mu.Lock()
	n.lastOp = op
	n.mu.Unlock()
}
