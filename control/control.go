// Package control is the agent's local API: the JSON types it speaks and a
// client for them, over a unix socket. The CLI and the tray use the client;
// the agent serves it.
package control

import "time"

// API routes. All bodies are JSON; errors come back as ErrorBody with a
// non-2xx status.
const (
	RouteID       = "/v1/id"
	RoutePeers    = "/v1/peers"
	RouteConnect  = "/v1/peers/connect"
	RouteAccept   = "/v1/peers/accept"
	RouteDecline  = "/v1/peers/decline"
	RouteRemove   = "/v1/peers/remove"
	RouteRename   = "/v1/peers/rename"
	RouteReload   = "/v1/config/reload"
	RouteMsg      = "/v1/messages/send"
	RouteMessages = "/v1/messages"
	RouteNAT      = "/v1/nat"
	RouteEvents   = "/v1/events"
	RouteSend     = "/v1/transfers/send"
	RouteStatus   = "/v1/status"
	RoutePause    = "/v1/transfers/pause"
	RouteConfig   = "/v1/config"
)

// ConnStringScheme starts every connection string (IDInfo's), so that a
// client can find one in pasted text; the agent parses it.
const ConnStringScheme = "punchdrop:"

// NATInfo is the NAT part of IDInfo and the answer of `punchdrop nat`.
type NATInfo struct {
	PublicAddr string `json:"public_addr"`
	Mapping    string `json:"mapping"`
	Filtering  string `json:"filtering"`
	Summary    string `json:"summary"` // the same in plain words
	// UDPBuffers are the socket's kernel buffers.
	UDPBuffers UDPBuffers `json:"udp_buffers"`
	// IPv6 are the host's global IPv6 addresses (with the node's port in
	// an agent's answer): public, reached with no NAT in between; a
	// stateful firewall in front lets in a peer that sends to it while
	// the node sends to the peer. Empty when the host has none.
	IPv6 []string `json:"ipv6,omitempty"`
	// PortMapping says whether the router mapped a port (UPnP, NAT-PMP or
	// PCP); nil when it was not asked.
	PortMapping *PortMappingInfo `json:"port_mapping,omitempty"`
	// Relays are the configured TURN relays, each with its allocation or
	// why there is none; absent when none is configured.
	Relays []RelayInfo `json:"relays,omitempty"`
	// DHT says whether the DHT can be reached; only `punchdrop nat` and
	// RouteNAT fill it in.
	DHT *DHTInfo `json:"dht,omitempty"`
}

// PortMappingInfo is the router's port mapping, or why there is none.
type PortMappingInfo struct {
	Protocol string `json:"protocol,omitempty"` // pcp, nat-pmp or upnp
	External string `json:"external,omitempty"` // the mapped public address
	Error    string `json:"error,omitempty"`    // what the protocols answered, when none mapped
}

// RelayInfo is one configured TURN relay.
type RelayInfo struct {
	URL string `json:"url"` // without its password or secret
	// Relayed is the allocation's relayed address, while one is held.
	Relayed string `json:"relayed,omitempty"`
	// Error says why there is none: refused credentials, no answer, or
	// still allocating.
	Error string `json:"error,omitempty"`
}

// DHTInfo says whether the DHT, where a node publishes where it can be
// reached and looks up peers that moved, answers.
type DHTInfo struct {
	Enabled   bool     `json:"enabled"`
	Bootstrap []string `json:"bootstrap,omitempty"` // the nodes it joins through
	// Reachable is true when DHT nodes answered the last operation (the
	// bootstrap, a put or a get), false when none did; absent while none
	// is over.
	Reachable *bool `json:"reachable,omitempty"`
	// LastOp is that operation: bootstrap, put or get. Answered DHT
	// nodes answered it, of Queried asked.
	LastOp   string `json:"last_op,omitempty"`
	Answered int    `json:"answered"`
	Queried  int    `json:"queried"`
	// Nodes is how many DHT nodes the node's routing table holds.
	Nodes int `json:"nodes"`
	// Publish is the last put of the node's record; absent if none yet.
	Publish *PublishInfo `json:"publish,omitempty"`
	// Since is when the DHT node started (a new one each UTC day); Sent
	// and Received count its traffic since.
	Since    *time.Time `json:"since,omitempty"`
	Sent     Traffic    `json:"sent"`
	Received Traffic    `json:"received"`
	Summary  string     `json:"summary"` // the above in words
}

// PublishInfo is a put of the node's record on the DHT.
type PublishInfo struct {
	At         time.Time `json:"at"`
	Seq        int64     `json:"seq"`
	Candidates int       `json:"candidates"` // addresses it held
	// HardNAT is true when it said the node's NAT maps a new port per
	// destination, so that peers try birthday probing.
	HardNAT bool   `json:"hard_nat,omitempty"`
	Stored  int    `json:"stored"` // DHT nodes that took it
	TookMs  int64  `json:"took_ms"`
	Error   string `json:"error,omitempty"`
}

// Traffic counts datagrams and bytes one way.
type Traffic struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// UDPBuffers says how large the UDP socket's kernel buffers are.
type UDPBuffers struct {
	Receive int  `json:"receive"` // bytes, as the kernel reports them
	Send    int  `json:"send"`
	Limited bool `json:"limited"` // the OS capped them below what fast transfers want
	// Advice says how to lift the limit; empty when there is none.
	Advice string `json:"advice,omitempty"`
}

// IDInfo answers RouteID: who this node is and how to reach it.
type IDInfo struct {
	NodeID           string `json:"node_id"`
	Name             string `json:"name"`
	ConnectionString string `json:"connection_string"`
	ListenPort       int    `json:"listen_port"`
	PublicAddr       string `json:"public_addr"`
	// PublicAddrs are all its public addresses, of every family: the
	// first is PublicAddr, then the host's global IPv6 ones.
	PublicAddrs []string `json:"public_addrs,omitempty"`
	LANAddrs    []string `json:"lan_addrs"`
	// RelayAddrs are the relayed addresses the node holds (and its
	// connection string carries).
	RelayAddrs []string `json:"relay_addrs,omitempty"`
	NAT        NATInfo  `json:"nat"`
}

// Peer states as shown to users and scripts.
const (
	StateConnected  = "connected"
	StateConnecting = "connecting"
	StateOffline    = "offline"
	StatePending    = "pending" // an unknown node asked to connect
)

// PeerInfo is one row of RoutePeers.
type PeerInfo struct {
	NodeID string  `json:"node_id"`
	Name   string  `json:"name"`
	State  string  `json:"state"`
	Path   string  `json:"path"` // direct, lan, relay, or empty
	Addr   string  `json:"addr"`
	RTTms  float64 `json:"rtt_ms"`
	Error  string  `json:"error,omitempty"` // why it is offline
	// FoundVia says where the session's address was learned: session,
	// dht, lan, conn_string or probe; empty unless connected.
	FoundVia string `json:"found_via,omitempty"`
	// LastSeen is when the peer was last heard from; absent if never.
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// HardNAT is true when the peer's NAT maps a new port per
	// destination, as its connection string, its rendezvous record or
	// the peer itself over a session said: birthday probing may reach it.
	HardNAT bool `json:"hard_nat,omitempty"`
	// DHTLookup is the last lookup of the peer on the DHT, made while it
	// could not be reached; absent if none.
	DHTLookup *LookupInfo `json:"dht_lookup,omitempty"`
	// NameTaken, in the answer to connect and accept, is the name the
	// peer came with when another peer has it already: it got Name.
	NameTaken string `json:"name_taken,omitempty"`
}

// LookupInfo is a lookup of a peer on the DHT.
type LookupInfo struct {
	At time.Time `json:"at"`
	// Result is found (a newer record, whose addresses are tried),
	// not_newer (only the record already seen, or an older one),
	// no_record, unreachable (no DHT node answered) or refused (a record
	// that does not open, or is too old).
	Result string `json:"result"`
	Detail string `json:"detail"` // the same in words
	// Seq is the sequence number of the record found; 0 unless found.
	Seq int64 `json:"seq,omitempty"`
	// Answered DHT nodes answered, of Queried asked, in TookMs.
	Answered int   `json:"answered"`
	Queried  int   `json:"queried"`
	TookMs   int64 `json:"took_ms"`
}

// ConnectRequest asks the agent to add a peer from its connection string.
type ConnectRequest struct {
	ConnectionString string `json:"connection_string"`
}

// PeerRequest names one peer by ID, unique ID prefix, or name.
type PeerRequest struct {
	Peer string `json:"peer"`
}

// ConfigInfo is the effective configuration (`punchdrop config --json`).
type ConfigInfo struct {
	Name        string   `json:"name"`
	ListenPort  int      `json:"listen_port"`
	STUNServers []string `json:"stun_servers"`
	// Relays are the relay URLs without their passwords and secrets.
	Relays      []string `json:"relays"`
	Outbox      string   `json:"outbox"`
	Downloads   string   `json:"downloads"`
	AfterSend   string   `json:"after_send"`
	QuietPeriod string   `json:"quiet_period"`
	// DownloadsPerPeer puts received files in Downloads/<peer name>/.
	DownloadsPerPeer bool   `json:"downloads_per_peer"`
	PunchTimeout     string `json:"punch_timeout"`
	ChunkSize        int    `json:"chunk_size"`
	// Lanes is how many extra connections a file is striped over.
	Lanes int `json:"lanes"`
	// Congestion is how connections answer loss: cubic or reno.
	Congestion string `json:"congestion"`
	LogLevel   string `json:"log_level"`
	// MinFreeSpace and MaxStagedPerPeer are sizes as the config writes
	// them ("2GiB").
	MinFreeSpace     string `json:"min_free_space"`
	MaxStagedPerPeer string `json:"max_staged_per_peer"`
	// HistoryDays is how long finished transfers are remembered.
	HistoryDays int `json:"history_days"`
	// DHT is whether the agent publishes and looks up on the DHT, and
	// DHTBootstrap the nodes it joins through (the defaults filled in).
	DHT          bool     `json:"dht"`
	DHTBootstrap []string `json:"dht_bootstrap"`
	// LANDiscovery is whether the agent announces itself to its peers on
	// the LAN and hears them.
	LANDiscovery bool `json:"lan_discovery"`
	// PortMapping is whether the agent asks the router to map its port.
	PortMapping bool   `json:"port_mapping"`
	File        string `json:"file"` // where it is kept
}

// ReloadResult says which changed keys a running agent applied.
// Restarting is true when one of them (port, STUN servers, punch timeout,
// lan_discovery, congestion) makes it start over: sessions drop for a
// moment and transfers resume.
type ReloadResult struct {
	Applied    []string `json:"applied"`
	Restarting bool     `json:"restarting"`
}

// RenameRequest gives a peer a new name.
type RenameRequest struct {
	Peer string `json:"peer"`
	Name string `json:"name"`
}

// MsgRequest sends a text message to a peer; the agent waits up to
// TimeoutMs for a session.
type MsgRequest struct {
	Peer      string `json:"peer"`
	Text      string `json:"text"`
	TimeoutMs int    `json:"timeout_ms,omitempty"`
}

// Message is a received message.
type Message struct {
	From     string    `json:"from"`      // sender's node ID
	FromName string    `json:"from_name"` // its name when known
	Text     string    `json:"text"`
	Time     time.Time `json:"time"`
}

// Event kinds on RouteEvents.
const (
	EventPeer        = "peer"         // a peer's state changed; Peer is set
	EventPeerRequest = "peer_request" // an unknown node knocked; Peer is set, State pending
	EventMessage     = "message"      // a message arrived; Message is set
	// EventTransfer reports a transfer queued, moving (at most a few
	// times a second), done or failed; Transfer is set.
	EventTransfer = "transfer"
	// EventNAT reports a new public address or NAT kind, a relay
	// allocation or a port mapping that came or went; NAT is set.
	EventNAT = "nat"
	// EventAlert reports something the user must know, in words (a
	// damaged state file was replaced); Alert is set. Status lists the
	// alerts of the agent's run too, for clients that subscribe later.
	EventAlert = "alert"
)

// Transfer states as shown to users and scripts.
const (
	TransferQueued    = "queued"
	TransferSending   = "sending"
	TransferReceiving = "receiving"
	TransferDone      = "done"
	TransferFailed    = "failed"
)

// Directions of a transfer.
const (
	DirectionOut = "out"
	DirectionIn  = "in"
)

// TransferInfo is one file going to or coming from a peer.
type TransferInfo struct {
	ID        string  `json:"id"`
	Peer      string  `json:"peer"`           // the peer's node ID
	PeerName  string  `json:"peer_name"`      // its name when known
	Direction string  `json:"direction"`      // out or in
	Name      string  `json:"name"`           // relative name; for a finished download, where it was stored
	Path      string  `json:"path,omitempty"` // the source file (out) or the stored file (in, when done)
	Size      int64   `json:"size"`
	Done      int64   `json:"done"` // bytes the receiver holds durably
	State     string  `json:"state"`
	Error     string  `json:"error,omitempty"` // why it failed, or why the last attempt did
	RateBps   float64 `json:"rate_bps"`        // bytes per second, while moving
	ETASec    float64 `json:"eta_s"`           // seconds left at that rate, while moving
}

// Status answers RouteStatus.
type Status struct {
	Transfers []TransferInfo `json:"transfers"`
	// Queue lists each file still to be sent, once per peer it is for.
	Queue []QueueItem `json:"queue"`
	// Paused is true while no file is sent (see RoutePause).
	Paused bool `json:"paused"`
	// Alerts are what the user must know about since the agent started,
	// in words (see EventAlert).
	Alerts []string `json:"alerts,omitempty"`
}

// QueueItem is a file waiting to reach one peer.
type QueueItem struct {
	ID       string `json:"id"`   // the transfer's ID, as in Transfers
	File     string `json:"file"` // absolute path of the source
	Name     string `json:"name"` // as offered to the peer
	Peer     string `json:"peer"`
	PeerName string `json:"peer_name"`
	State    string `json:"state"`           // queued or sending
	Tries    int    `json:"tries,omitempty"` // failed attempts so far
	Error    string `json:"error,omitempty"` // why the last attempt failed
	Outbox   bool   `json:"outbox"`          // dropped into the outbox (else punchdrop send)
}

// PauseRequest stops or resumes sending (RoutePause). Files keep their
// place in the queue, and ones cut off resume where they stopped.
type PauseRequest struct {
	Paused bool `json:"paused"`
}

// SendRequest queues files and folders for a peer. Paths are absolute.
// As, if set, is the name a single file is offered under.
type SendRequest struct {
	Peer  string   `json:"peer"`
	Paths []string `json:"paths"`
	As    string   `json:"as,omitempty"`
}

// SendResult lists what SendRequest queued: one transfer per file.
type SendResult struct {
	Transfers []TransferInfo `json:"transfers"`
}

// Event is one line of the event stream (server-sent events, one JSON
// object per "data:" line).
type Event struct {
	Kind     string        `json:"kind"`
	Time     time.Time     `json:"time"`
	Peer     *PeerInfo     `json:"peer,omitempty"`
	Message  *Message      `json:"message,omitempty"`
	Transfer *TransferInfo `json:"transfer,omitempty"`
	NAT      *NATInfo      `json:"nat,omitempty"`
	Alert    string        `json:"alert,omitempty"`
}

// ErrorBody is the body of every failed request.
type ErrorBody struct {
	Error string `json:"error"`
}
