package portmap

import (
	"context"
	"sync"
	"time"
)

// Timings of keeping a mapping.
const (
	// retryMin and retryMax bound the wait before asking a router that
	// mapped nothing again: routers rarely start mapping on their own, but
	// the node may have moved to a network whose router does (Refresh
	// asks at once then).
	retryMin = time.Minute
	retryMax = 30 * time.Minute
	// renewRetry is the wait before trying again to renew a mapping that
	// did not renew, while it still has time to run.
	renewRetry = 10 * time.Second
)

// Keeper keeps the node's port mapped: it maps it, renews the mapping
// halfway through its life, maps again when it is lost or the network
// changes, and deletes it when it stops.
type Keeper struct {
	client  *Client
	changed func(Mapping) // told each new mapping; a zero one when there is none
	refresh chan struct{}

	mu      sync.Mutex // guards following
	current Mapping
	lastErr error
}

// NewKeeper returns a keeper for client's port; changed is told the
// mapping whenever it changes (a zero Mapping when it is lost), from the
// keeper's goroutine.
func NewKeeper(client *Client, changed func(Mapping)) *Keeper {
	return &Keeper{client: client, changed: changed, refresh: make(chan struct{}, 1)}
}

// Status returns the current mapping, or why there is none (nil before
// the first attempt).
func (k *Keeper) Status() (Mapping, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.current, k.lastErr
}

// Refresh asks the router again at once: the network changed.
func (k *Keeper) Refresh() {
	select {
	case k.refresh <- struct{}{}:
	default:
	}
}

// Run keeps the mapping until ctx ends, then deletes it.
func (k *Keeper) Run(ctx context.Context) {
	retry := retryMin
	var wait time.Duration // the first attempt at once
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			k.stop()
			return
		case <-k.refresh:
			retry = retryMin
		case <-timer.C:
		}
		timer.Stop()
		m, err := k.client.Map(ctx)
		if ctx.Err() != nil {
			if err == nil {
				k.set(m, nil) // mapped just as ctx ended: stop deletes it too
			}
			k.stop()
			return
		}
		cur, _ := k.Status()
		switch {
		case err == nil:
			retry = retryMin
			wait = time.Until(m.renewAt())
			k.set(m, nil)
			if m.External != cur.External {
				k.client.log.Info("port mapped", "protocol", m.Protocol, "external", m.External, "internal", m.Internal, "lifetime", m.Lifetime)
			}
		case cur.External.IsValid() && time.Now().Before(cur.Expires):
			wait = renewRetry // the old mapping runs a while yet
			k.client.log.Debug("renew port mapping", "err", err)
		default:
			wait, retry = retry, min(2*retry, retryMax)
			k.set(Mapping{}, err)
			if cur.External.IsValid() {
				k.client.log.Warn("port mapping lost", "err", err)
			} else {
				k.client.log.Debug("no port mapping", "err", err, "retry_in", wait)
			}
		}
	}
}

// set records the current mapping and tells the owner when it changed.
func (k *Keeper) set(m Mapping, err error) {
	k.mu.Lock()
	old := k.current
	k.current, k.lastErr = m, err
	k.mu.Unlock()
	if m.External != old.External && k.changed != nil {
		k.changed(m)
	}
}

// stop deletes the mapping: a clean exit leaves nothing open on the
// router.
func (k *Keeper) stop() {
	if m, _ := k.Status(); m.External.IsValid() {
		k.client.release(m)
		k.set(Mapping{}, nil)
	}
}
