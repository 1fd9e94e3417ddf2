package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Timings of a Keeper.
const (
	// keepCheckInterval is how often a held allocation is checked (one
	// small request): an allocation lost to a server restart or a network
	// change is noticed within seconds, and sessions move back onto a new
	// one soon after.
	keepCheckInterval = 10 * time.Second
	// minKeepRetry and maxKeepRetry bound the back-off between attempts
	// on a server that is down or unreachable: each attempt is a
	// connection or a few datagrams, so trying every 15 s at most costs
	// nothing and gets the relay back within 15 s of its return.
	minKeepRetry = time.Second
	maxKeepRetry = 15 * time.Second
	// unauthorizedRetry spaces attempts whose credentials the server
	// refused: they do not mend themselves (a config change starts the
	// keeper over), but a server's user database may.
	unauthorizedRetry = 5 * time.Minute
	// steadyHold is how long an allocation must last for its loss to
	// count as news: one lost sooner (a server that drops allocations at
	// once) is retried with the same back-off as a failure, not at once.
	steadyHold = time.Minute
)

// State is what a Keeper holds now, for status lines.
type State struct {
	Server Server
	// Relayed is the allocation's relayed address; zero while none is
	// held.
	Relayed netip.AddrPort
	// Err is why there is none, once an attempt failed; nil while one is
	// held, or before the first attempt ended.
	Err error
}

// Keeper keeps an allocation on one TURN server for as long as it runs:
// it allocates, checks the allocation every keepCheckInterval (or when
// Recheck asks, or at once when a TCP or TLS connection to the server
// closes), and makes a new one when the old is lost, trying again
// with back-off while the server is down. Its owner hears of each
// allocation and of its loss through the callback.
type Keeper struct {
	srv     Server
	opts    Options
	changed func(*Allocation)
	log     *slog.Logger
	recheck chan struct{}

	mu    sync.Mutex // guards following
	state State
}

// NewKeeper prepares a Keeper of an allocation on srv. Run calls changed
// with each new allocation, and with nil once it is lost or the keeper
// stops; the keeper closes each allocation after changed(nil) returned.
// changed is called from Run's goroutine.
func NewKeeper(srv Server, opts Options, changed func(*Allocation)) *Keeper {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Keeper{srv: srv, opts: opts, changed: changed, log: log.With("relay", srv.String()),
		recheck: make(chan struct{}, 1), state: State{Server: srv}}
}

// State reports what the keeper holds now.
func (k *Keeper) State() State {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state
}

// Recheck asks the keeper to check its allocation now (the network
// changed), or to try again at once if it holds none.
func (k *Keeper) Recheck() {
	select {
	case k.recheck <- struct{}{}:
	default:
	}
}

// Run keeps an allocation until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	retry := minKeepRetry
	var lastErr string
	for ctx.Err() == nil {
		a, err := Allocate(ctx, k.srv, k.opts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			k.setState(netip.AddrPort{}, err)
			wait := retry
			if errors.Is(err, ErrUnauthorized) {
				wait = unauthorizedRetry
			}
			// One warning says it; the same failure again and again is
			// for the debug log.
			if err.Error() != lastErr {
				k.log.Warn("relay unavailable", "err", err, "retry_in", wait)
			} else {
				k.log.Debug("relay still unavailable", "err", err, "retry_in", wait)
			}
			lastErr = err.Error()
			k.sleep(ctx, wait)
			retry = min(2*retry, maxKeepRetry)
			continue
		}
		k.setState(a.Relayed, nil)
		k.log.Info("relay allocated", "relayed", a.Relayed)
		k.changed(a)
		held := time.Now()
		err = k.hold(ctx, a)
		k.setState(netip.AddrPort{}, err) // before changed, which may look
		k.changed(nil)
		a.Close()
		if ctx.Err() != nil {
			return
		}
		if time.Since(held) >= steadyHold {
			retry, lastErr = minKeepRetry, ""
			k.log.Warn("relay allocation lost; making a new one", "err", err)
			continue
		}
		// Lost as soon as made: the server is not keeping it, and asking
		// again at once would spin.
		msg := fmt.Sprint(err)
		if msg != lastErr {
			k.log.Warn("relay allocation lost soon after it was made; trying again later", "err", err, "held", time.Since(held).Round(time.Millisecond), "retry_in", retry)
		} else {
			k.log.Debug("relay allocation lost soon after it was made again", "err", err, "retry_in", retry)
		}
		lastErr = msg
		k.sleep(ctx, retry)
		retry = min(2*retry, maxKeepRetry)
	}
}

// hold checks a until it is lost (the error says why) or ctx ends (nil).
func (k *Keeper) hold(ctx context.Context, a *Allocation) error {
	tick := time.NewTicker(keepCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.Lost():
			return errors.New("the connection to the relay closed")
		case <-tick.C:
		case <-k.recheck:
		}
		if err := a.Check(ctx); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// sleep waits d, or less if ctx ends or Recheck is called.
func (k *Keeper) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-k.recheck:
	}
}

func (k *Keeper) setState(relayed netip.AddrPort, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.state.Relayed, k.state.Err = relayed, err
}
