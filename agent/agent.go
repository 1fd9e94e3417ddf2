package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/punchdrop/punchdrop/agent/scheduler"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lan"
	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/safetext"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/transfer"
)

// shutdownTimeout bounds how long the control API waits for requests in
// flight when the agent stops.
const shutdownTimeout = time.Second

// Options are the agent's command-line overrides.
type Options struct {
	Home        string   // --home; empty means $PUNCHDROP_HOME or XDG
	Name        string   // --name; saved to the config
	Port        int      // --port; saved to the config; -1 means not given
	STUNServers []string // --stun; this run only
	Relays      []string // --relay; this run only, instead of the configured ones
	// DHTBootstrap is --dht-bootstrap, this run only: the DHT nodes to
	// join through instead of the config's; NoDHT among them turns the
	// DHT off.
	DHTBootstrap []string
	Stderr       io.Writer
}

// errRestart ends serve when a config change needs a new node.
var errRestart = errors.New("restart")

// Agent is a running punchdrop agent.
type Agent struct {
	paths  Paths
	cfg    Config
	ident  session.Identity
	store  *store.Store
	node   *session.Node
	log    *slog.Logger
	events *broker
	// alerts are what the user must hear about this run, whenever they
	// look (a damaged state file that was replaced).
	alerts []string
	view   *transferView        // what the control API shows of transfers
	recv   *receiving           // files peers send
	sched  *scheduler.Scheduler // files we send
	relays *relays              // the node's relay allocations
	// portMapMu guards portMap, the node's port mapping: nil while
	// port_mapping is off; a config reload starts or stops it.
	portMapMu sync.Mutex
	portMap   *portMapping
	level     *slog.LevelVar // the log's level, changed by a config reload
	// fullLog spaces the warnings that the pending requests are full:
	// one a minute says it, a flood of strangers would repeat it.
	fullLog *rate.Limiter

	// peersMu makes adding a peer one step: its name is checked against
	// the others' and stored before another can take it.
	peersMu sync.Mutex
	cfgMu   sync.Mutex // guards cfg and outbox once the agent runs
	// outbox is the running outbox watcher; a config reload that moves
	// the outbox replaces it.
	outbox       *outbox
	reopenOutbox func()
	// restart makes serve return errRestart.
	restart func()
	// pruneNow wakes runPruner: history_days changed.
	pruneNow chan struct{}
	// find runs the DHT (dhtOverride is --dht-bootstrap); serveCtx is
	// serve's, which a finder started by a config reload runs under.
	find        finding
	dhtOverride []string
	serveCtx    context.Context
	// lan is LAN discovery; nil when it is off. Set before the control
	// API and the node run.
	lan *lan.Service
}

// Run starts the agent and serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	paths := ResolvePaths(opts.Home)
	cfg, err := LoadConfig(paths.Config)
	if err != nil {
		return err
	}
	if opts.Name != "" {
		cfg.Name = opts.Name
	}
	if opts.Port >= 0 {
		cfg.ListenPort = opts.Port
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := cfg.CheckFolders(paths); err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.LogLevel))
	log, closeLog, err := openLog(paths.Log, level, opts.Stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	if len(opts.Relays) > 0 {
		if _, err := parseRelays(opts.Relays); err != nil {
			return fmt.Errorf("--relay: %w", err)
		}
	}
	for {
		a, err := start(paths, cfg, opts, log)
		if err != nil {
			return err
		}
		a.level, a.dhtOverride = level, opts.DHTBootstrap
		err = a.serve(ctx)
		a.close()
		if !errors.Is(err, errRestart) || ctx.Err() != nil {
			return err
		}
		log.Info("starting over with the new configuration")
		if cfg, err = LoadConfig(paths.Config); err != nil {
			return err
		}
	}
}

// start opens the agent's state and binds its socket. Unless --port was
// given, a saved port that another program has taken meanwhile gives way
// to a free one for this run, rather than no agent at all.
func start(paths Paths, cfg Config, opts Options, log *slog.Logger) (_ *Agent, err error) {
	portMayMove := opts.Port < 0
	ident, err := session.LoadOrCreateIdentity(paths.Identity)
	if err != nil {
		return nil, err
	}
	st, alerts, err := openState(paths.State, log)
	if err != nil {
		return nil, err
	}
	a := &Agent{paths: paths, cfg: cfg, ident: ident, store: st, log: log, events: newBroker(), alerts: alerts,
		fullLog: rate.NewLimiter(rate.Every(time.Minute), 1), pruneNow: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	a.view = &transferView{store: st, live: newProgressTracker(), events: a.events, downloads: a.downloadsDir}
	a.recv = &receiving{
		journal: st, quota: transfer.NewQuota(cfg.DiskLimits()), log: log,
		folder: a.downloadsFolder, progress: a.view.receiveProgress, streams: map[string]int{},
		warnLog: rate.NewLimiter(rate.Every(10*time.Second), 5),
	}
	if err := a.recv.setDownloads(a.downloadsDir()); err != nil {
		return nil, err
	}
	stun := cfg.STUNServers
	if len(opts.STUNServers) > 0 {
		stun = opts.STUNServers
	}
	relayURLs := cfg.Relays
	if len(opts.Relays) > 0 {
		relayURLs = opts.Relays
	}
	servers, err := parseRelays(relayURLs) // checked by Validate and Run
	if err != nil {
		return nil, err
	}
	if a.cfg.Name == "" {
		a.cfg.Name = defaultName()
	}
	conn, err := session.ListenUDP(cfg.ListenPort)
	if errors.Is(err, syscall.EADDRINUSE) && portMayMove && cfg.ListenPort != 0 {
		// Peers still find us: our probes reach them from the new port.
		if conn, err = session.ListenUDP(0); err == nil {
			log.Warn("the saved UDP port is taken by another program; using another until the next start",
				"saved", cfg.ListenPort, "port", conn.LocalAddr())
		}
	}
	if err != nil {
		return nil, err
	}
	a.node, err = session.NewNode(session.NodeConfig{
		Identity:     ident,
		Name:         a.cfg.Name,
		Conn:         conn,
		STUNServers:  stun,
		PunchTimeout: cfg.PunchTimeout.Duration,
		Congestion:   session.Congestion(cfg.Congestion),
		Logger:       log,
		Events:       a.nodeEvents(),
	})
	if err != nil {
		return nil, err
	}
	a.relays = newRelays(servers, a.node, log, a.publishNAT)
	a.sched = scheduler.New(scheduler.Config{
		Queue: st, Sender: nodeSender{a.node, a.lanes, &spokenVersions{}}, Observer: sendObserver{a.view, a.currentOutbox},
		Log: log, ChunkSize: cfg.ChunkSize,
	})
	a.outbox = a.newOutbox()
	// The port is chosen once and kept, so the connection string survives
	// restarts (a port that had to give way is tried again next time).
	if a.cfg.ListenPort == 0 {
		a.cfg.ListenPort = a.node.Port()
	}
	if err := a.cfg.Save(paths.Config); err != nil {
		return nil, err
	}
	if err := a.loadPeers(); err != nil {
		return nil, err
	}
	return a, nil
}

// openState opens the state database. A damaged one is moved aside and a
// fresh one started, with the peers that could be read from it: the agent
// runs on (the outbox still holds every file to send), and says so loudly
// in the log and in the alerts it reports.
func openState(path string, log *slog.Logger) (*store.Store, []string, error) {
	st, err := store.Open(path)
	if !errors.Is(err, store.ErrDamaged) {
		return st, nil, err
	}
	st, rep, rerr := store.Reset(path, time.Now())
	if rerr != nil {
		return nil, nil, fmt.Errorf("%w; moving it aside failed too: %w (move or delete %s, then start again)", err, rerr, path)
	}
	alert := fmt.Sprintf("The state file was damaged and has been replaced by a fresh one. %d peer(s) were kept; "+
		"files in the outbox will be sent again; the damaged file is at %s.", rep.Peers, rep.MovedTo)
	log.Error("STATE FILE DAMAGED: started with a fresh one", "err", err, "moved_to", rep.MovedTo, "peers_kept", rep.Peers)
	return st, []string{alert}, nil
}

// close releases what start opened.
func (a *Agent) close() {
	if a.node != nil {
		a.node.Close()
	}
	if a.recv != nil {
		a.recv.close()
	}
	a.store.Close()
}

// defaultName is the host name, or "punchdrop" if it is unusable.
func defaultName() string {
	if h, err := os.Hostname(); err == nil && session.CheckName(h) == nil && h != "" {
		return h
	}
	return "punchdrop"
}

func (a *Agent) loadPeers() error {
	peers, err := a.store.Peers()
	if err != nil {
		return err
	}
	// Older versions let two peers share a name; the one added later is
	// renamed, as it would be now.
	slices.SortStableFunc(peers, func(x, y store.Peer) int { return x.Added.Compare(y.Added) })
	for i, p := range peers {
		if name := uniqueName(p.Name, p.ID, peers[:i]); name != p.Name {
			if err := a.store.UpdatePeer(p.ID, func(sp *store.Peer) { sp.Name = name }); err != nil {
				return err
			}
			a.log.Warn("two peers had one name; renamed the newer", "peer", p.ID, "was", p.Name, "now", name)
			peers[i].Name = name
		}
	}
	for _, p := range peers {
		a.node.AddPeer(peerInfoFromStore(p))
	}
	return nil
}

// peerInfoFromStore is what the node needs to know of a stored peer: its
// key, name, and the addresses to try.
func peerInfoFromStore(p store.Peer) session.PeerInfo {
	info := session.PeerInfo{ID: p.ID, Name: p.Name, LAN: slices.Clone(p.LAN), Relay: slices.Clone(p.Relay), HardNAT: p.HardNAT}
	for _, a := range slices.Concat([]netip.AddrPort{p.Public}, p.Direct, p.LAN, p.Relay) {
		if a.IsValid() && !slices.Contains(info.Candidates, a) {
			info.Candidates = append(info.Candidates, a)
		}
	}
	for _, l := range p.Learned {
		if !slices.Contains(info.Candidates, l.Addr) {
			info.Learned = append(info.Learned, l.Candidate())
		}
	}
	learned := func(a netip.AddrPort) bool {
		return slices.ContainsFunc(info.Learned, func(c session.Candidate) bool { return c.Addr == a })
	}
	if p.LastAddr.IsValid() && !slices.Contains(info.Candidates, p.LastAddr) && !learned(p.LastAddr) {
		info.Learned = append(info.Learned, session.Candidate{Addr: p.LastAddr, Kind: session.PathDirect, Source: session.SourceSession})
	}
	return info
}

// serve runs the node and the control API until ctx ends.
func (a *Agent) serve(ctx context.Context) error {
	ln, err := listenControl(a.paths.Socket)
	if err != nil {
		a.node.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var restarting atomic.Bool
	a.restart = func() { restarting.Store(true); cancel() }
	a.serveCtx = ctx
	if err := a.startFinder(ctx, dhtBootstrap(a.cfg, a.dhtOverride)); err != nil {
		ln.Close()
		a.node.Close()
		return err
	}
	defer a.stopFinder()
	if a.cfg.PortMapping {
		a.setPortMapping(ctx, true)
	}
	runLAN := a.startLAN(ctx)
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	cs := a.node.ConnString()
	a.log.Info("agent started", "node", a.ident.ID.String(), "name", a.cfg.Name, "port", a.node.Port(), "socket", a.paths.Socket, "lan", cs.LAN)
	for _, alert := range a.alerts {
		a.events.publish(control.Event{Kind: control.EventAlert, Alert: alert})
	}
	var workers sync.WaitGroup
	workers.Go(func() { a.sched.Run(ctx) })
	workers.Go(func() { a.runOutbox(ctx) })
	workers.Go(func() { a.runPruner(ctx) })
	workers.Go(func() { a.relays.run(ctx) })
	workers.Go(runLAN)
	err = a.node.Run(ctx)
	workers.Wait()
	a.setPortMapping(ctx, false) // a clean exit leaves nothing open on the router
	a.events.close()
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	srv.Shutdown(shutCtx)
	os.Remove(a.paths.Socket)
	if restarting.Load() {
		return errRestart
	}
	a.log.Info("agent stopped")
	return err
}

// nodeEvents wires the node's callbacks to the store and the event stream.
func (a *Agent) nodeEvents() session.Events {
	return session.Events{
		Message: func(from session.NodeID, text string) error {
			// The text is the peer's: no terminal controls, no bidi tricks.
			m := store.Message{From: from.String(), Text: safetext.Clean(text), Time: time.Now().UTC()}
			if err := a.store.AddMessage(m); err != nil {
				a.log.Error("store message", "err", err)
				return errors.New("receiver could not store the message")
			}
			cm := a.controlMessage(m)
			a.log.Info("message received", "from", cm.FromName, "peer", from.Short())
			a.events.publish(control.Event{Kind: control.EventMessage, Message: &cm})
			return nil
		},
		PeerRequest: func(req session.PeerRequest) {
			now := time.Now().UTC()
			r := store.Request{ID: req.ID, Name: req.Name, Addr: req.Addr, FirstSeen: now, LastSeen: now}
			if err := a.store.NoteRequest(r); errors.Is(err, store.ErrTooManyRequests) {
				if a.fullLog.Allow() {
					a.log.Warn("peer request refused: too many are pending; accept or decline some", "node", req.ID.Short(), "pending", store.MaxRequests)
				}
				return
			} else if err != nil {
				a.log.Error("store peer request", "err", err)
				return
			}
			a.log.Info("peer request", "node", req.ID.Short(), "name", req.Name, "addr", req.Addr)
			pi := requestInfo(r)
			a.events.publish(control.Event{Kind: control.EventPeerRequest, Peer: &pi})
		},
		PeerState: func(st session.PeerStatus) {
			if st.State == session.StateConnected {
				a.sched.PeerUp(st.ID.String())
			}
			if f := a.finder(); f != nil {
				f.SetConnected(st.ID, st.State == session.StateConnected)
			}
			pi := peerInfo(st)
			a.events.publish(control.Event{Kind: control.EventPeer, Peer: &pi})
		},
		Transfer: func(ctx context.Context, sess *session.Session, stream *session.Stream) {
			a.serveIncoming(ctx, sess.Peer, stream)
		},
		NAT: func(r nat.Report) {
			a.relays.recheck() // the network changed: the allocations may be gone
			a.portMapping().natChanged(r)
			a.publishNAT()
		},
		PeerAddr: func(id session.NodeID, addr netip.AddrPort) {
			err := a.store.UpdatePeer(id, func(p *store.Peer) { p.LastAddr = addr })
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				a.log.Warn("remember peer address", "err", err)
			}
		},
		LocalCandidates: func(cands []session.Candidate) {
			a.portMapping().localCandidates(cands)
			if f := a.finder(); f != nil {
				f.Publish(cands, a.node.OwnNAT() == session.NATHard)
			}
			if a.lan != nil {
				a.lan.Announce(cands)
			}
		},
		PeerCandidates: a.rememberLearned,
		PeerNAT:        a.rememberHardNAT,
	}
}

// natInfo is the node's view of its network: the NAT, the socket's
// buffers, and the relays.
func (a *Agent) natInfo() control.NATInfo {
	info := NATInfo(a.node.NAT(), a.node.SocketBuffers())
	info.Relays = a.relays.info()
	info.PortMapping = a.portMapping().info()
	for _, c := range a.node.LocalCandidates() {
		if c.Kind == session.PathDirect && c.Addr.Addr().Is6() {
			info.IPv6 = append(info.IPv6, c.Addr.String())
		}
	}
	return info
}

// portMapping is the node's port mapping; nil while port_mapping is off.
func (a *Agent) portMapping() *portMapping {
	a.portMapMu.Lock()
	defer a.portMapMu.Unlock()
	return a.portMap
}

// setPortMapping starts keeping the node's port mapped (under ctx), or
// stops and deletes the mapping, if it is not so already.
func (a *Agent) setPortMapping(ctx context.Context, on bool) {
	a.portMapMu.Lock()
	pm := a.portMap
	if on && pm == nil {
		a.portMap = startPortMapping(ctx, a.node, a.ident, a.log, a.publishNAT)
	}
	if !on {
		a.portMap = nil
	}
	a.portMapMu.Unlock()
	if !on && pm != nil {
		pm.stop()
		a.publishNAT()
	}
}

// publishNAT tells event subscribers the node's view of its network.
func (a *Agent) publishNAT() {
	info := a.natInfo()
	a.events.publish(control.Event{Kind: control.EventNAT, NAT: &info})
}

// serveIncoming receives a file a peer offers on stream, until ctx (the
// session's) ends.
func (a *Agent) serveIncoming(ctx context.Context, peer session.NodeID, stream transfer.Stream) {
	if rec, err := a.recv.receive(ctx, peer.String(), stream); rec.ID != "" {
		a.view.receiveEnded(rec, err)
	}
}

func shortID(id string) string { return id[:min(len(id), 8)] }
