//go:build linux

package tray

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"

	"github.com/punchdrop/punchdrop/control"
)

// Timings of the tray.
const (
	// refreshInterval re-reads the node's identity, peers and transfers.
	// Events say what changed, but the agent drops events for a reader
	// that lags, so the menu heals within this time.
	refreshInterval = 30 * time.Second
	// firstRefresh is the wait before re-reading while the agent is down
	// (it comes back with its address unknown); while the address is being
	// discovered the wait doubles from there up to refreshInterval, in case
	// the NAT event came before the tray subscribed.
	firstRefresh = time.Second
	// reconnectInterval is how often the tray retries an agent that went
	// away.
	reconnectInterval = 2 * time.Second
	// callTimeout bounds one control call; the agent is local and answers
	// in milliseconds, so this only matters when it is wedged.
	callTimeout = 10 * time.Second
	// dialogTimeout closes a dialog nobody answers, so a forgotten window
	// does not hold an action open for ever.
	dialogTimeout = 10 * time.Minute
	// endedMemory is how long a finished transfer's ID, or a request no
	// longer pending, is remembered, so a repeated event does not notify
	// twice.
	endedMemory = 10 * time.Minute
	// maxKnocked bounds the requests remembered as notified; the agent
	// keeps far fewer pending.
	maxKnocked = 256
)

// app is one running tray. The UI loop (loop) owns the state below
// "owned by the UI loop"; everything else posts functions to it.
type app struct {
	opts   Options
	log    *slog.Logger
	client *control.Client
	notes  *notifier
	dlg    dialogs
	auto   autostart
	icons  map[iconState][]byte
	ctx    context.Context // ends when the tray quits
	quit   context.CancelFunc
	ui     chan func()
	bg     sync.WaitGroup // goroutines to wait for before Run returns

	// Owned by the UI loop.
	menu      menu
	agentUp   bool
	id        control.IDInfo
	peers     []control.PeerInfo // configured peers and pending requests
	transfers map[string]control.TransferInfo
	ended     map[string]time.Time // transfers already notified, by ID
	paused    bool
	autoOn    bool
	batches   map[string]*batch // notifications that collect files, by kind and peer
	batchSeq  int
	knocked   map[string]time.Time // requests already notified, by node ID
	knocks    *knockBatch          // the latest request notification
	alerted   map[string]bool      // the agent's alerts already shown
	icon      iconState
	tooltip   string
}

// Run shows the tray icon and its menu until the user chooses Quit or ctx
// ends. It talks to the agent on opts.Socket and rides out the agent going
// away and coming back. The system-tray library keeps its state per
// process, so Run may be called once per process.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// The tray library uses the shared session-bus connection and would
	// panic on quitting without one; make sure it exists first.
	if !sessionBusConfigured() {
		return fmt.Errorf("tray: %w: no D-Bus session bus", ErrNoDesktop)
	}
	if _, err := dbus.SessionBus(); err != nil {
		return fmt.Errorf("tray: %w: %v", ErrNoDesktop, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &app{
		opts:      opts,
		log:       log,
		client:    control.NewClient(opts.Socket),
		notes:     newNotifier(log),
		dlg:       findDialogs(),
		auto:      newAutostart(),
		icons:     map[iconState][]byte{},
		ctx:       ctx,
		quit:      cancel,
		ui:        make(chan func()),
		transfers: map[string]control.TransferInfo{},
		ended:     map[string]time.Time{},
		batches:   map[string]*batch{},
		knocked:   map[string]time.Time{},
		alerted:   map[string]bool{},
		icon:      iconOffline,
	}
	defer a.notes.close()
	for _, s := range []iconState{iconIdle, iconBusy, iconPaused, iconOffline} {
		a.icons[s] = iconPNG(s)
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.notes.run(ctx)
	}()
	systray.SetTitle(appName)
	systray.SetIcon(a.icons[iconOffline])
	a.tooltip = appName + " — starting"
	systray.SetTooltip(a.tooltip)
	go func() {
		<-ctx.Done()
		systray.Quit()
	}()
	loopDone := make(chan struct{})
	systray.Run(func() {
		a.buildMenu()
		go func() {
			defer close(loopDone)
			a.loop()
		}()
	}, cancel)
	cancel()
	<-loopDone
	a.notes.close() // no more actions, so nothing adds to a.bg now
	a.bg.Wait()
	log.Info("tray stopped")
	return nil
}

// post runs fn on the UI loop; it gives up when the tray quits.
func (a *app) post(fn func()) {
	select {
	case a.ui <- fn:
	case <-a.ctx.Done():
	}
}

// loop is the UI loop: it applies events, clicks and refreshes to the
// state and renders the menu after each.
func (a *app) loop() {
	events := make(chan control.Event, 64)
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.followEvents(events)
	}()
	a.autoOn = a.auto.enabled()
	a.refresh()
	a.render()
	wait := firstRefresh
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case ev := <-events:
			a.handleEvent(ev)
		case fn := <-a.ui:
			fn()
		case <-timer.C:
			a.refresh()
			wait = a.nextRefresh(wait)
			timer.Reset(wait)
		}
		a.render()
	}
}

// nextRefresh is the wait before the next re-read (see firstRefresh).
func (a *app) nextRefresh(prev time.Duration) time.Duration {
	switch {
	case !a.agentUp:
		return firstRefresh
	case a.id.PublicAddr == "":
		return min(2*prev, refreshInterval)
	}
	return refreshInterval
}

// followEvents feeds the agent's events to the UI loop, subscribing again
// whenever the stream ends. The state is re-read once each subscription
// is up, so nothing that happened before it is missed.
func (a *app) followEvents(events chan<- control.Event) {
	for {
		err := a.forwardEvents(events)
		if a.ctx.Err() != nil {
			return
		}
		a.log.Debug("event stream ended", "err", err)
		a.post(func() { a.setAgentUp(false, err) })
		select {
		case <-time.After(reconnectInterval):
		case <-a.ctx.Done():
			return
		}
	}
}

// forwardEvents subscribes, has the state re-read, and passes events on
// until the stream ends.
func (a *app) forwardEvents(events chan<- control.Event) error {
	stream, err := a.client.Subscribe(a.ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	a.post(a.refresh)
	for {
		ev, err := stream.Next()
		if err != nil {
			return err
		}
		select {
		case events <- ev:
		case <-a.ctx.Done():
			return a.ctx.Err()
		}
	}
}

// refresh re-reads the node's identity, peers, transfers and pause state.
func (a *app) refresh() {
	ctx, cancel := context.WithTimeout(a.ctx, callTimeout)
	defer cancel()
	id, err := a.client.ID(ctx)
	if err != nil {
		a.setAgentUp(false, err)
		return
	}
	a.id = id
	a.setAgentUp(true, nil)
	a.refreshPeers()
	st, err := a.client.Status(ctx)
	if err != nil {
		a.log.Warn("read transfers", "err", err)
		return
	}
	a.paused = st.Paused
	for _, alert := range st.Alerts {
		a.notifyAlert(alert)
	}
	clear(a.transfers)
	for _, t := range st.Transfers {
		if active(t) {
			a.transfers[t.ID] = t
		}
	}
}

// refreshPeers re-reads the peers and pending requests.
func (a *app) refreshPeers() {
	ctx, cancel := context.WithTimeout(a.ctx, callTimeout)
	defer cancel()
	peers, err := a.client.Peers(ctx)
	if err != nil {
		a.log.Warn("read peers", "err", err)
		return
	}
	a.peers = peers
	a.forgetKnocks(time.Now())
}

// setAgentUp records whether the agent answers, and says so when it stops.
func (a *app) setAgentUp(up bool, err error) {
	if a.agentUp && !up && a.ctx.Err() == nil {
		a.log.Warn("the agent stopped answering", "err", err)
		body := "Files are not sent or received until it runs again (punchdrop agent)."
		if a.opts.OwnsAgent {
			body = "Files are not sent or received; quit and start punchdrop again."
		}
		a.notes.send(note{summary: "The punchdrop agent stopped", body: body})
	}
	if !up {
		clear(a.transfers)
	}
	a.agentUp = up
}

// handleEvent applies one event from the agent.
func (a *app) handleEvent(ev control.Event) {
	if !a.agentUp {
		a.refresh()
	}
	switch ev.Kind {
	case control.EventNAT:
		a.refresh() // the identity lines show the NAT and public address
	case control.EventPeer:
		a.refreshPeers()
	case control.EventPeerRequest:
		a.refreshPeers()
		if ev.Peer != nil {
			a.notifyRequest(*ev.Peer, time.Now())
		}
	case control.EventAlert:
		a.notifyAlert(ev.Alert)
	case control.EventMessage:
		if ev.Message != nil {
			a.notifyMessage(*ev.Message)
		}
	case control.EventTransfer:
		if ev.Transfer != nil {
			a.onTransfer(*ev.Transfer)
		}
	}
}

// onTransfer tracks a transfer and notifies when it ends.
func (a *app) onTransfer(t control.TransferInfo) {
	if active(t) {
		a.transfers[t.ID] = t
		return
	}
	delete(a.transfers, t.ID)
	now := time.Now()
	for id, at := range a.ended {
		if now.Sub(at) > endedMemory {
			delete(a.ended, id)
		}
	}
	if _, seen := a.ended[t.ID]; seen {
		return
	}
	a.ended[t.ID] = now
	switch t.State {
	case control.TransferDone, control.TransferFailed:
		a.addToBatch(t, now)
	}
}

// run starts an action that may block (a dialog, a control call) on its own
// goroutine; a failure becomes a notification saying what could not be done.
func (a *app) run(what string, fn func(ctx context.Context) error) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		ctx, cancel := context.WithTimeout(a.ctx, dialogTimeout)
		defer cancel()
		err := fn(ctx)
		if err == nil || a.ctx.Err() != nil {
			return
		}
		a.log.Warn("action failed", "action", what, "err", err)
		a.notes.send(note{summary: "Could not " + what, body: errorText(err)})
	}()
}

// errorText is an error as a person should read it.
func errorText(err error) string {
	if errors.Is(err, control.ErrNoAgent) {
		return "The punchdrop agent is not running."
	}
	return capitalize(err.Error())
}

// sortedTransfers returns the tracked transfers, moving ones first.
func (a *app) sortedTransfers() []control.TransferInfo {
	out := make([]control.TransferInfo, 0, len(a.transfers))
	for _, t := range a.transfers {
		out = append(out, t)
	}
	slices.SortFunc(out, func(x, y control.TransferInfo) int {
		if moving(x) != moving(y) {
			if moving(x) {
				return -1
			}
			return 1
		}
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.ID, y.ID))
	})
	return out
}

// iconState is what the icon should show now.
func (a *app) iconState() iconState {
	switch {
	case !a.agentUp:
		return iconOffline
	case a.paused:
		return iconPaused
	}
	for _, t := range a.transfers {
		if moving(t) {
			return iconBusy
		}
	}
	return iconIdle
}
