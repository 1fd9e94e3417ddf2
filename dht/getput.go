package dht

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	k_nearest_nodes "github.com/anacrolix/dht/v2/k-nearest-nodes"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
	"github.com/anacrolix/dht/v2/types"

	"github.com/punchdrop/punchdrop/rendezvous"
)

// Shape of a lookup.
const (
	// traversalAlpha is how many nodes a lookup asks at once. Kademlia's
	// α is 3; libtorrent asks 5 (search_branching), which shortens a
	// lookup on the mainline DHT, where many nodes never answer, at the
	// cost of a few more queries.
	traversalAlpha = 5
	// closestK is how many of the nodes closest to a target a put goes
	// to, and a lookup converges on: BEP 5's bucket size, which BEP 44
	// uses for puts.
	closestK = 8
)

// Errors of Put and Get.
var (
	// ErrNotFound is returned by Get when no node returned a valid item.
	ErrNotFound = errors.New("no DHT node has the item")
	// ErrNotStored is returned by Put when no node stored the item.
	ErrNotStored = errors.New("no DHT node stored the item")
	// ErrSeqNotNewer is returned by Put when nodes hold an item of the
	// same target with a higher sequence number (it hides the one put), or
	// refused the put because theirs is at least as high: seal the record
	// again with rendezvous.NextSeq(max(prev, stats.HighestSeq), now).
	ErrSeqNotNewer = errors.New("the DHT holds a newer item for this target")
)

// Put stores it at the closestK nodes nearest its target: a lookup that
// collects their write tokens, then a put to each. It fails if no node
// stored the item; stats say how many did and how many answered.
func (n *Node) Put(ctx context.Context, it rendezvous.Item) (OpStats, error) {
	stats := OpStats{Op: "put", Started: time.Now()}
	if err := it.Check(); err != nil {
		return stats, fmt.Errorf("dht put: %w", err)
	}
	if n.isClosed() {
		return stats, ErrClosed
	}
	var found foundItems
	op, err := n.traverse(ctx, it.Target(), it.Salt, true, &found)
	if err != nil {
		return stats, fmt.Errorf("dht put: %w", err)
	}
	stats.Queried, stats.Answered = int(op.Stats().NumAddrsTried), int(op.Stats().NumResponses)
	key := [32]byte(it.Key)
	put := bep44.Put{V: it.Value, K: &key, Salt: it.Salt, Sig: it.Sig, Seq: it.Seq}
	var stored, refused atomic.Int32
	var wg sync.WaitGroup
	op.Closest().Range(func(elem k_nearest_nodes.Elem) {
		token, _ := elem.Data.(string) // the traversal kept only string tokens
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.server.Put(ctx, adht.NewAddr(elem.Addr.UDP()), put, token, adht.QueryRateLimiting{}).ToError()
			switch {
			case err == nil:
				stored.Add(1)
			case isSeqRefusal(err):
				refused.Add(1)
			default:
				n.log.Debug("dht put refused", "node", elem.Addr.String(), "err", err)
			}
		}()
	})
	wg.Wait()
	best, count := found.result()
	stats.Stored, stats.Found, stats.HighestSeq = int(stored.Load()), count, best.Seq
	stats.Took = time.Since(stats.Started)
	n.setLastOp(stats)
	n.log.Debug("dht put", "target", it.Target().String(), "seq", it.Seq, "stored", stats.Stored,
		"answered", stats.Answered, "queried", stats.Queried, "took", stats.Took.Round(time.Millisecond))
	switch {
	case best.Seq > it.Seq || (stats.Stored == 0 && refused.Load() > 0):
		return stats, fmt.Errorf("%w: seq %d, the DHT holds %d", ErrSeqNotNewer, it.Seq, max(best.Seq, it.Seq))
	case stats.Stored == 0:
		if err := ctx.Err(); err != nil {
			return stats, fmt.Errorf("%w: %w", ErrNotStored, err)
		}
		return stats, fmt.Errorf("%w (%d of %d nodes answered)", ErrNotStored, stats.Answered, stats.Queried)
	}
	return stats, nil
}

// Get looks up the mutable item at target (whose salt is salt) and returns
// the valid one with the highest sequence number that any node returned.
// Only items whose key and salt hash to target and whose signature
// verifies count.
func (n *Node) Get(ctx context.Context, target rendezvous.Target, salt []byte) (rendezvous.Item, OpStats, error) {
	stats := OpStats{Op: "get", Started: time.Now()}
	if n.isClosed() {
		return rendezvous.Item{}, stats, ErrClosed
	}
	var found foundItems
	op, err := n.traverse(ctx, target, salt, false, &found)
	if err != nil {
		return rendezvous.Item{}, stats, fmt.Errorf("dht get: %w", err)
	}
	best, count := found.result()
	stats.Queried, stats.Answered = int(op.Stats().NumAddrsTried), int(op.Stats().NumResponses)
	stats.Found, stats.HighestSeq = count, best.Seq
	stats.Took = time.Since(stats.Started)
	n.setLastOp(stats)
	n.log.Debug("dht get", "target", target.String(), "found", count, "seq", best.Seq,
		"answered", stats.Answered, "queried", stats.Queried, "took", stats.Took.Round(time.Millisecond))
	if count == 0 {
		if err := ctx.Err(); err != nil {
			return rendezvous.Item{}, stats, fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return rendezvous.Item{}, stats, fmt.Errorf("%w (%d of %d nodes answered)", ErrNotFound, stats.Answered, stats.Queried)
	}
	return best, stats, nil
}

// traverse runs a BEP 44 "get" lookup of target until it stalls (no
// closer nodes left to ask) or ctx ends, passing each valid item a node
// returns to found. With needToken, only nodes that gave a write token
// count among the closest. The returned operation has stopped.
func (n *Node) traverse(ctx context.Context, target rendezvous.Target, salt []byte, needToken bool, found *foundItems) (*traversal.Operation, error) {
	in := traversal.OperationInput{
		Target: krpc.ID(target),
		Alpha:  traversalAlpha,
		K:      closestK,
		DoQuery: func(qctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
			res := n.server.Get(qctx, adht.NewAddr(addr.UDP()), bep44.Target(target), nil, adht.QueryRateLimiting{})
			if r := res.Reply.R; r != nil {
				if it, ok := itemFromReturn(r, target, salt); ok {
					found.add(it)
				}
			}
			qr := res.TraversalQueryResult(addr)
			qr.Nodes6 = onlyIPv6(qr.Nodes6)
			return qr
		},
		NodeFilter: n.traversalNodeFilter,
	}
	if needToken {
		in.DataFilter = func(data any) bool { _, ok := data.(string); return ok }
	}
	op := traversal.Start(in)
	nodes, err := n.server.TraversalStartingNodes()
	if err != nil {
		op.Stop()
		<-op.Stopped()
		return nil, err
	}
	op.AddNodes(nodes)
	select {
	case <-op.Stalled():
	case <-ctx.Done():
	}
	op.Stop()
	<-op.Stopped()
	return op, nil
}

// traversalNodeFilter is the library's filter, and keeps the node from
// asking itself: other nodes list it among the closest, and the library
// does not answer its own queries (each costs a 2 s timeout).
func (n *Node) traversalNodeFilter(node types.AddrMaybeId) bool {
	if node.Id.Ok && node.Id.Value == n.id {
		return false
	}
	return n.server.TraversalNodeFilter(node)
}

// onlyIPv6 drops the IPv4 nodes from a "nodes6" list. The library lists
// every node there, IPv4 ones as IPv4-mapped addresses, which the
// traversal takes for other nodes than the same ones in "nodes" and asks
// twice.
func onlyIPv6(nodes []krpc.NodeInfo) []krpc.NodeInfo {
	return slices.DeleteFunc(nodes, func(ni krpc.NodeInfo) bool { return ni.Addr.IP.To4() != nil })
}

// itemFromReturn returns the item in a "get" reply, if it holds a valid
// one for target.
func itemFromReturn(r *krpc.Return, target rendezvous.Target, salt []byte) (rendezvous.Item, bool) {
	if r.Seq == nil || len(r.V) == 0 {
		return rendezvous.Item{}, false
	}
	value, ok := parseBencodedString(r.V)
	if !ok {
		return rendezvous.Item{}, false
	}
	it := rendezvous.Item{Key: r.K, Salt: bytes.Clone(salt), Seq: *r.Seq, Sig: r.Sig, Value: value}
	if it.Target() != target || it.Check() != nil {
		return rendezvous.Item{}, false
	}
	return it, true
}

// parseBencodedString returns the content of b if b is exactly one
// bencoded byte string in canonical form ("3:abc", no leading zeros).
func parseBencodedString(b []byte) ([]byte, bool) {
	i := bytes.IndexByte(b, ':')
	if i < 1 || i > 4 || (b[0] == '0' && i > 1) {
		return nil, false // BEP 44 values are at most 1000 bytes: 4 digits
	}
	n := 0
	for _, c := range b[:i] {
		if c < '0' || c > '9' {
			return nil, false
		}
		n = n*10 + int(c-'0')
	}
	if n != len(b)-i-1 {
		return nil, false
	}
	return bytes.Clone(b[i+1:]), true
}

// isSeqRefusal reports whether err is BEP 44's error 302: the node holds
// a higher sequence number (the library returns it as a value when its own
// store refuses, as a pointer when a remote node does).
func isSeqRefusal(err error) bool {
	var kv krpc.Error
	if errors.As(err, &kv) {
		return kv.Code == krpc.ErrorCodeSequenceNumberLessThanCurrent
	}
	var kp *krpc.Error
	return errors.As(err, &kp) && kp != nil && kp.Code == krpc.ErrorCodeSequenceNumberLessThanCurrent
}

// foundItems collects the valid items of a lookup; queries add to it
// concurrently.
type foundItems struct {
	mu    sync.Mutex // guards following
	best  rendezvous.Item
	count int
}

func (f *foundItems) add(it rendezvous.Item) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	if f.count == 1 || it.Seq > f.best.Seq {
		f.best = it
	}
}

// result returns the item with the highest sequence number and how many
// valid items were found.
func (f *foundItems) result() (rendezvous.Item, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.best, f.count
}
