package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/store"
)

// Limits on what the control API accepts.
const (
	// maxRequestBody bounds a request body; the largest legitimate one is
	// a message.
	maxRequestBody = 128 << 10
	// maxMessageLen bounds a text message, leaving room in a control frame.
	maxMessageLen = 32 << 10
	// defaultMsgWait is how long `punchdrop msg` waits for a session to
	// an offline peer: long enough to punch a fresh path.
	defaultMsgWait = 15 * time.Second
	// maxMsgWait caps what a client may ask for.
	maxMsgWait = 10 * time.Minute
)

// errBadRequest marks errors that are the caller's fault (HTTP 400).
var errBadRequest = errors.New("bad request")

func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+control.RouteID, jsonHandler(a.handleID))
	mux.HandleFunc("GET "+control.RoutePeers, jsonHandler(a.handlePeers))
	mux.HandleFunc("POST "+control.RouteConnect, jsonHandler(a.handleConnect))
	mux.HandleFunc("POST "+control.RouteAccept, jsonHandler(a.handleAccept))
	mux.HandleFunc("POST "+control.RouteDecline, jsonHandler(a.handleDecline))
	mux.HandleFunc("POST "+control.RouteRemove, jsonHandler(a.handleRemove))
	mux.HandleFunc("POST "+control.RouteRename, jsonHandler(a.handleRename))
	mux.HandleFunc("POST "+control.RouteReload, jsonHandler(a.handleReload))
	mux.HandleFunc("GET "+control.RouteConfig, jsonHandler(a.handleConfig))
	mux.HandleFunc("POST "+control.RouteMsg, jsonHandler(a.handleMsg))
	mux.HandleFunc("GET "+control.RouteMessages, jsonHandler(a.handleMessages))
	mux.HandleFunc("GET "+control.RouteNAT, jsonHandler(a.handleNAT))
	mux.HandleFunc("POST "+control.RouteSend, jsonHandler(a.handleSend))
	mux.HandleFunc("GET "+control.RouteStatus, jsonHandler(a.handleStatus))
	mux.HandleFunc("POST "+control.RoutePause, jsonHandler(a.handlePause))
	mux.HandleFunc("GET "+control.RouteEvents, a.events.serveHTTP)
	return mux
}

// jsonHandler adapts fn to HTTP: it answers fn's result as JSON, or its
// error as control.ErrorBody (400 for the caller's mistakes, 500 else).
func jsonHandler(fn func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		out, err := fn(r)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, errBadRequest) || errors.Is(err, store.ErrNotFound) || errors.Is(err, session.ErrBadConnString) {
				status = http.StatusBadRequest
			}
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(control.ErrorBody{Error: strings.TrimPrefix(err.Error(), errBadRequest.Error()+": ")})
			return
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // connection strings contain '&'
		enc.Encode(out)
	}
}

func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return nil
}

func (a *Agent) handleID(*http.Request) (any, error) {
	cs := a.node.ConnString()
	strs := func(addrs []netip.AddrPort) []string {
		out := make([]string, len(addrs))
		for i, l := range addrs {
			out[i] = l.String()
		}
		return out
	}
	return control.IDInfo{
		NodeID:           a.ident.ID.String(),
		Name:             cs.Name,
		ConnectionString: cs.String(),
		ListenPort:       a.node.Port(),
		PublicAddr:       addrString(cs.Public),
		PublicAddrs:      strs(slices.DeleteFunc(slices.Concat([]netip.AddrPort{cs.Public}, cs.Direct), func(a netip.AddrPort) bool { return !a.IsValid() })),
		LANAddrs:         strs(cs.LAN),
		RelayAddrs:       strs(cs.Relay),
		NAT:              a.natInfo(),
	}, nil
}

// NATInfo converts a NAT report for the control API.
func NATInfo(r nat.Report, buffers session.SocketBuffers) control.NATInfo {
	orUnknown := func(b nat.Behavior) string {
		if b == "" {
			return string(nat.Unknown)
		}
		return string(b)
	}
	return control.NATInfo{
		PublicAddr: addrString(r.PublicAddr),
		Mapping:    orUnknown(r.Mapping),
		Filtering:  orUnknown(r.Filtering),
		Summary:    r.PlainWords(),
		UDPBuffers: control.UDPBuffers{Receive: buffers.Receive, Send: buffers.Send, Limited: buffers.Limited, Advice: buffers.Advice()},
	}
}

func (a *Agent) handleNAT(*http.Request) (any, error) {
	info := a.natInfo()
	info.DHT = a.dhtInfo()
	return info, nil
}

func (a *Agent) handlePeers(*http.Request) (any, error) {
	var out []control.PeerInfo
	f := a.finder()
	for _, st := range a.node.Peers() {
		pi := peerInfo(st)
		if f != nil {
			pi.DHTLookup = lookupInfo(f.PeerLookup(st.ID))
		}
		out = append(out, pi)
	}
	reqs, err := a.store.Requests()
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		out = append(out, requestInfo(r))
	}
	slices.SortFunc(out, func(x, y control.PeerInfo) int {
		return strings.Compare(strings.ToLower(x.Name)+x.NodeID, strings.ToLower(y.Name)+y.NodeID)
	})
	if out == nil {
		out = []control.PeerInfo{}
	}
	return out, nil
}

func (a *Agent) handleConnect(r *http.Request) (any, error) {
	var req control.ConnectRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	cs, err := session.ParseConnString(req.ConnectionString)
	if err != nil {
		return nil, err
	}
	if cs.ID == a.ident.ID {
		return nil, fmt.Errorf("%w: that is this node's own connection string; paste the other side's", errBadRequest)
	}
	name := cs.Name
	if name == "" {
		name = cs.ID.Short()
	}
	return a.addPeer(store.Peer{ID: cs.ID, Name: name, Public: cs.Public, Direct: cs.Direct, LAN: cs.LAN, Relay: cs.Relay, HardNAT: cs.HardNAT, Added: time.Now().UTC()})
}

// addPeer stores p (keeping what was known of it) and starts connecting.
// A name another peer has already is made unique ("bob-2"), and the
// answer says so: two peers of one name would share Outbox/<name>/.
func (a *Agent) addPeer(p store.Peer) (control.PeerInfo, error) {
	a.peersMu.Lock()
	defer a.peersMu.Unlock()
	peers, err := a.store.Peers()
	if err != nil {
		return control.PeerInfo{}, err
	}
	for _, old := range peers {
		if old.ID == p.ID {
			p.Added, p.LastAddr = old.Added, old.LastAddr
		}
	}
	asked := p.Name
	p.Name = uniqueName(p.Name, p.ID, peers)
	info := peerInfoFromStore(p)
	if err := a.store.PutPeer(p); err != nil {
		return control.PeerInfo{}, err
	}
	a.node.AddPeer(info)
	if f := a.finder(); f != nil {
		f.Track(info.ID)
	}
	a.updateLANPeers()
	a.log.Info("peer added", "peer", info.ID.Short(), "name", p.Name)
	a.currentOutbox().addPeer()
	for _, st := range a.node.Peers() {
		if st.ID == info.ID {
			pi := peerInfo(st)
			if p.Name != asked {
				pi.NameTaken = asked
			}
			return pi, nil
		}
	}
	return control.PeerInfo{}, fmt.Errorf("peer %s vanished", p.ID)
}

// uniqueName is name if no peer but id has it (ignoring case, as folder
// names on some systems do), else name with the first free "-N" suffix.
func uniqueName(name string, id session.NodeID, peers []store.Peer) string {
	taken := func(n string) bool {
		return slices.ContainsFunc(peers, func(p store.Peer) bool { return p.ID != id && strings.EqualFold(p.Name, n) })
	}
	unique := name
	for i := 2; taken(unique); i++ {
		suffix := fmt.Sprintf("-%d", i)
		base := name
		for len(base)+len(suffix) > session.MaxNameLen {
			_, size := utf8.DecodeLastRuneInString(base)
			base = base[:len(base)-size]
		}
		unique = strings.TrimSpace(base) + suffix
	}
	return unique
}

// storedPeer finds a peer by its ID as text (as transfer records and
// messages name it).
func (a *Agent) storedPeer(id string) (store.Peer, bool) {
	peers, _ := a.store.Peers()
	for _, p := range peers {
		if p.ID.String() == id {
			return p, true
		}
	}
	return store.Peer{}, false
}

func (a *Agent) handleAccept(r *http.Request) (any, error) {
	found, err := a.pendingRequest(r, "accept")
	if err != nil {
		return nil, err
	}
	name := found.Name
	if name == "" {
		name = found.ID.Short()
	}
	return a.addPeer(store.Peer{ID: found.ID, Name: name, Public: found.Addr, Added: time.Now().UTC()})
}

func (a *Agent) handleDecline(r *http.Request) (any, error) {
	found, err := a.pendingRequest(r, "decline")
	if err != nil {
		return nil, err
	}
	return struct{}{}, a.store.DeleteRequest(found.ID)
}

func (a *Agent) handleRemove(r *http.Request) (any, error) {
	var req control.PeerRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	id, err := a.resolvePeer(req.Peer)
	if err != nil {
		return nil, err
	}
	removed, _ := a.storedPeer(id.String())
	if err := a.store.RemovePeer(id); err != nil {
		return nil, err
	}
	a.node.RemovePeer(id)
	if f := a.finder(); f != nil {
		f.Forget(id)
	}
	a.updateLANPeers()
	a.sched.DropPeer(id.String())
	a.currentOutbox().removePeer(removed)
	a.log.Info("peer removed", "peer", id.Short())
	return struct{}{}, nil
}

func (a *Agent) handleRename(r *http.Request) (any, error) {
	var req control.RenameRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, fmt.Errorf("%w: the new name is empty", errBadRequest)
	}
	if err := session.CheckName(req.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	id, err := a.resolvePeer(req.Peer)
	if err != nil {
		return nil, err
	}
	peers, err := a.store.Peers()
	if err != nil {
		return nil, err
	}
	if uniqueName(req.Name, id, peers) != req.Name {
		return nil, fmt.Errorf("%w: another peer is called %s already", errBadRequest, req.Name)
	}
	var old, renamed store.Peer
	if err := a.store.UpdatePeer(id, func(p *store.Peer) { old = *p; p.Name = req.Name; renamed = *p }); err != nil {
		return nil, err
	}
	a.currentOutbox().renamePeer(old, renamed)
	return a.addPeer(renamed)
}

func (a *Agent) handleConfig(*http.Request) (any, error) {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return a.cfg.Effective(a.paths), nil
}

// handleReload reads the config file again and applies what changed.
// A new port, STUN servers, relays, punch timeout, lan_discovery or congestion
// restart the agent in place once the answer is out.
func (a *Agent) handleReload(*http.Request) (any, error) {
	cfg, err := LoadConfig(a.paths.Config)
	if err == nil {
		err = cfg.CheckFolders(a.paths)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	res := control.ReloadResult{Applied: []string{}}
	if cfg.Name != "" && cfg.Name != a.cfg.Name {
		a.cfg.Name = cfg.Name
		a.node.SetName(cfg.Name)
		res.Applied = append(res.Applied, "name")
	}
	if cfg.LogLevel != a.cfg.LogLevel {
		a.cfg.LogLevel = cfg.LogLevel
		a.level.Set(logLevel(cfg.LogLevel))
		res.Applied = append(res.Applied, "log_level")
	}
	if cfg.ChunkSize != a.cfg.ChunkSize {
		a.cfg.ChunkSize = cfg.ChunkSize
		a.sched.SetChunkSize(cfg.ChunkSize)
		res.Applied = append(res.Applied, "chunk_size")
	}
	if cfg.Downloads != a.cfg.Downloads {
		if err := a.recv.setDownloads(cmpOr(cfg.Downloads, a.paths.Downloads)); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadRequest, err)
		}
		a.cfg.Downloads = cfg.Downloads
		res.Applied = append(res.Applied, "downloads")
	}
	if cfg.Outbox != a.cfg.Outbox {
		a.cfg.Outbox = cfg.Outbox
		a.reopenOutbox() // the outbox watcher starts over on the new folder
		res.Applied = append(res.Applied, "outbox")
	}
	for _, k := range []struct {
		key     string
		changed bool
		apply   func()
	}{
		{"after_send", cfg.AfterSend != a.cfg.AfterSend, func() { a.cfg.AfterSend = cfg.AfterSend }},
		{"quiet_period", cfg.QuietPeriod != a.cfg.QuietPeriod, func() { a.cfg.QuietPeriod = cfg.QuietPeriod }},
		{"downloads_per_peer", cfg.PeerFolders != a.cfg.PeerFolders, func() { a.cfg.PeerFolders = cfg.PeerFolders }},
		{"lanes", cfg.Lanes != a.cfg.Lanes, func() { a.cfg.Lanes = cfg.Lanes }},
		{"min_free_space", cfg.MinFreeSpace != a.cfg.MinFreeSpace, func() {
			a.cfg.MinFreeSpace = cfg.MinFreeSpace
			a.recv.quota.SetDiskLimits(a.cfg.DiskLimits())
		}},
		{"max_staged_per_peer", cfg.MaxStagedPerPeer != a.cfg.MaxStagedPerPeer, func() {
			a.cfg.MaxStagedPerPeer = cfg.MaxStagedPerPeer
			a.recv.quota.SetDiskLimits(a.cfg.DiskLimits())
		}},
		{"history_days", cfg.HistoryDays != a.cfg.HistoryDays, func() {
			a.cfg.HistoryDays = cfg.HistoryDays
			a.wakePruner()
		}},
		{"dht", cfg.DHT != a.cfg.DHT, func() { a.cfg.DHT = cfg.DHT }},
		{"dht_bootstrap", !slices.Equal(cfg.DHTBootstrap, a.cfg.DHTBootstrap), func() { a.cfg.DHTBootstrap = cfg.DHTBootstrap }},
	} {
		if k.changed {
			k.apply()
			res.Applied = append(res.Applied, k.key)
		}
	}
	if cfg.PortMapping != a.cfg.PortMapping {
		// Started or stopped in place: the mapping is deleted at once when
		// it is turned off; peers hear the candidate go or come.
		a.cfg.PortMapping = cfg.PortMapping
		a.setPortMapping(a.serveCtx, cfg.PortMapping)
		res.Applied = append(res.Applied, "port_mapping")
	}
	if old, now := a.finderBootstrap(), dhtBootstrap(a.cfg, a.dhtOverride); !slices.Equal(old, now) {
		a.stopFinder() // and start over with the new settings, the node running on
		if err := a.startFinder(a.serveCtx, now); err != nil {
			return nil, err
		}
	}
	// The socket and the node are made with these: the node starts over
	// (sessions drop and come back, transfers resume).
	for _, k := range []struct {
		key     string
		changed bool
	}{
		{"listen_port", cfg.ListenPort != a.cfg.ListenPort},
		{"stun_servers", !slices.Equal(cfg.STUNServers, a.cfg.STUNServers)},
		{"relays", !slices.Equal(cfg.Relays, a.cfg.Relays)},
		{"punch_timeout", cfg.PunchTimeout != a.cfg.PunchTimeout},
		{"lan_discovery", cfg.LANDiscovery != a.cfg.LANDiscovery},
		{"congestion", cfg.Congestion != a.cfg.Congestion},
	} {
		if k.changed {
			res.Applied = append(res.Applied, k.key)
			res.Restarting = true
		}
	}
	a.log.Info("config reloaded", "applied", res.Applied, "restarting", res.Restarting)
	if res.Restarting {
		a.restart()
	}
	return res, nil
}

// pendingRequest finds the pending request that the body of r names.
func (a *Agent) pendingRequest(r *http.Request, doing string) (store.Request, error) {
	var req control.PeerRequest
	if err := decodeBody(r, &req); err != nil {
		return store.Request{}, err
	}
	reqs, err := a.store.Requests()
	if err != nil {
		return store.Request{}, err
	}
	found, err := resolve(req.Peer, reqs, func(r store.Request) (string, string) { return r.ID.String(), r.Name })
	if err != nil {
		return store.Request{}, fmt.Errorf("%w: %s: %v", errBadRequest, doing, err)
	}
	return found, nil
}

// resolvePeer finds a configured peer by ID, unique ID prefix, or name.
func (a *Agent) resolvePeer(arg string) (session.NodeID, error) {
	peers, err := a.store.Peers()
	if err != nil {
		return session.NodeID{}, err
	}
	p, err := resolve(arg, peers, func(p store.Peer) (string, string) { return p.ID.String(), p.Name })
	if err != nil {
		return session.NodeID{}, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return p.ID, nil
}

func (a *Agent) handleMsg(r *http.Request) (any, error) {
	var req control.MsgRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Text == "" || len(req.Text) > maxMessageLen {
		return nil, fmt.Errorf("%w: a message needs 1 to %d bytes of text", errBadRequest, maxMessageLen)
	}
	id, err := a.resolvePeer(req.Peer)
	if err != nil {
		return nil, err
	}
	wait := defaultMsgWait
	if req.TimeoutMs > 0 {
		wait = min(time.Duration(req.TimeoutMs)*time.Millisecond, maxMsgWait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	if err := a.node.SendMessage(ctx, id, req.Text); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (a *Agent) handleMessages(*http.Request) (any, error) {
	msgs, err := a.store.Messages()
	if err != nil {
		return nil, err
	}
	out := make([]control.Message, len(msgs))
	for i, m := range msgs {
		out[i] = a.controlMessage(m)
	}
	return out, nil
}

func (a *Agent) handleSend(r *http.Request) (any, error) {
	var req control.SendRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if len(req.Paths) == 0 {
		return nil, fmt.Errorf("%w: name at least one file or folder", errBadRequest)
	}
	id, err := a.resolvePeer(req.Peer)
	if err != nil {
		return nil, err
	}
	queued, err := a.queueFiles(id, req.Paths, req.As)
	if err != nil {
		return nil, err
	}
	return control.SendResult{Transfers: queued}, nil
}

func (a *Agent) handleStatus(*http.Request) (any, error) {
	st, err := a.view.status()
	st.Paused, st.Alerts = a.sched.Paused(), a.alerts
	return st, err
}

func (a *Agent) handlePause(r *http.Request) (any, error) {
	var req control.PauseRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := a.sched.SetPaused(req.Paused); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (a *Agent) controlMessage(m store.Message) control.Message {
	cm := control.Message{From: m.From, Text: m.Text, Time: m.Time}
	if p, ok := a.storedPeer(m.From); ok {
		cm.FromName = p.Name
	}
	return cm
}

func peerInfo(st session.PeerStatus) control.PeerInfo {
	pi := control.PeerInfo{
		NodeID:   st.ID.String(),
		Name:     st.Name,
		State:    string(st.State),
		Path:     string(st.Path),
		Addr:     addrString(st.Addr),
		Error:    st.Error,
		FoundVia: string(st.FoundVia),
		HardNAT:  st.HardNAT,
	}
	if st.State == session.StateConnected {
		pi.RTTms = float64(st.RTT.Microseconds()) / 1000
	}
	if !st.LastSeen.IsZero() {
		seen := st.LastSeen.UTC().Truncate(time.Second)
		pi.LastSeen = &seen
	}
	return pi
}

func requestInfo(r store.Request) control.PeerInfo {
	return control.PeerInfo{NodeID: r.ID.String(), Name: r.Name, State: control.StatePending, Addr: addrString(r.Addr)}
}
