//go:build linux

package tray

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/esiqveland/notify"
	"github.com/godbus/dbus/v5"
)

// Notifications go to the desktop's notification daemon
// (org.freedesktop.Notifications) through github.com/esiqveland/notify,
// which wraps godbus and delivers the ActionInvoked signals that the
// Open / Accept / Reply buttons need.

const (
	// noteQueue is how many notifications may wait for the daemon; beyond
	// that they are logged and dropped rather than stall the menu.
	noteQueue = 64
	// noteTimeout lets the daemon decide how long a notification shows.
	noteTimeout = notify.ExpireTimeoutSetByNotificationServer
	// replaceMemory is how long a coalescing key remembers its
	// notification; batches are far shorter.
	replaceMemory = time.Hour
)

// note is one desktop notification.
type note struct {
	// key, when set, makes a later note with the same key replace this
	// one on screen (a batch of received files updates one notification).
	key     string
	summary string
	body    string
	actions []noteAction
}

// noteAction is a button on a notification.
type noteAction struct {
	key, label string
	// run is called on the notifier's signal goroutine with its lock held:
	// it must not block long, and may use the notifier only to send.
	run func()
}

// notifier shows notes, one at a time on its own goroutine, and runs their
// actions. Without a bus or a daemon it logs each note and carries on.
type notifier struct {
	log   *slog.Logger
	conn  *dbus.Conn      // private session-bus connection; nil when there is none
	n     notify.Notifier // nil when there is no bus
	queue chan note

	mu      sync.Mutex              // guards following
	actions map[uint32][]noteAction // by notification ID, until it closes
	closed  bool
}

// sentNote is what the worker remembers of a keyed notification.
type sentNote struct {
	id uint32
	at time.Time
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log, queue: make(chan note, noteQueue), actions: map[uint32][]noteAction{}}
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		log.Warn("notifications will only be logged: no session bus", "err", err)
		return n
	}
	nn, err := notify.New(conn,
		notify.WithOnAction(n.onAction),
		notify.WithOnClosed(n.onClosed),
		notify.WithLogger(slogPrintf{log}),
	)
	if err != nil {
		conn.Close()
		log.Warn("notifications will only be logged", "err", err)
		return n
	}
	n.conn, n.n = conn, nn
	return n
}

// slogPrintf adapts slog to the notify library's Printf logger; its
// messages are about its own signal loop, so they go to debug.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(format string, v ...any) {
	l.log.Debug("notify", "msg", format, "args", v)
}

// send queues nt; it never blocks.
func (n *notifier) send(nt note) {
	select {
	case n.queue <- nt:
	default:
		n.log.Warn("too many notifications; dropped one", "summary", nt.summary)
	}
}

// run shows queued notes until ctx ends.
func (n *notifier) run(ctx context.Context) {
	sent := map[string]sentNote{}
	for {
		select {
		case <-ctx.Done():
			return
		case nt := <-n.queue:
			n.show(nt, sent)
		}
	}
}

func (n *notifier) show(nt note, sent map[string]sentNote) {
	n.log.Info("notification", "summary", nt.summary, "body", nt.body)
	if n.n == nil {
		return
	}
	now := time.Now()
	for k, s := range sent {
		if now.Sub(s.at) > replaceMemory {
			delete(sent, k)
		}
	}
	msg := notify.Notification{
		AppName:       appName,
		AppIcon:       "punchdrop",
		Summary:       nt.summary,
		Body:          escapeMarkup(nt.body),
		ExpireTimeout: noteTimeout,
	}
	if prev, ok := sent[nt.key]; ok && nt.key != "" {
		msg.ReplacesID = prev.id
	}
	msg.SetUrgency(notify.UrgencyNormal)
	for _, a := range nt.actions {
		msg.Actions = append(msg.Actions, notify.Action{Key: a.key, Label: a.label})
	}
	id, err := n.n.SendNotification(msg)
	if err != nil {
		n.log.Info("no notification daemon; the notification above was only logged", "err", err)
		return
	}
	if nt.key != "" {
		sent[nt.key] = sentNote{id: id, at: now}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(nt.actions) > 0 {
		n.actions[id] = nt.actions
	} else {
		delete(n.actions, id)
	}
}

// escapeMarkup escapes the few characters that daemons supporting body
// markup would read as tags or entities: file names and messages come
// from peers.
func escapeMarkup(s string) string {
	var out []rune
	for _, r := range s {
		switch r {
		case '&':
			out = append(out, []rune("&amp;")...)
		case '<':
			out = append(out, []rune("&lt;")...)
		case '>':
			out = append(out, []rune("&gt;")...)
		default:
			out = append(out, r)
		}
	}
	return string(out)
}

// onAction runs a button's action. It holds the lock while it does, so
// that once close returns no action runs any more.
func (n *notifier) onAction(sig *notify.ActionInvokedSignal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	for _, a := range n.actions[sig.ID] {
		if a.key == sig.ActionKey {
			a.run()
			return
		}
	}
}

func (n *notifier) onClosed(sig *notify.NotificationClosedSignal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.actions, sig.ID)
}

// close stops action delivery and closes the bus connection; it may be
// called more than once.
func (n *notifier) close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	n.mu.Unlock()
	if n.n != nil {
		n.n.Close()
	}
	if n.conn != nil {
		n.conn.Close()
	}
}
