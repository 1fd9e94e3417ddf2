package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// ErrNoAgent is returned when no agent listens on the socket.
var ErrNoAgent = errors.New("the punchdrop agent is not running (start it with \"punchdrop agent\")")

// Client talks to the agent over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the agent listening on socket.
func NewClient(socket string) *Client {
	return &Client{
		socket: socket,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				conn, err := d.DialContext(ctx, "unix", socket)
				if err != nil {
					return nil, err
				}
				if err := checkAgentUser(conn); err != nil {
					conn.Close()
					return nil, fmt.Errorf("control socket %s: %w", socket, err)
				}
				return conn, nil
			},
		}},
	}
}

// do sends in (when not nil) as JSON and decodes the answer into out.
func (c *Client) do(ctx context.Context, method, route string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+route, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.requestError("ask agent", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e ErrorBody
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("agent answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read agent answer: %w", err)
	}
	return nil
}

// requestError says "not running" plainly when nothing listens on the socket.
func (c *Client) requestError(doing string, err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w (no socket at %s)", ErrNoAgent, c.socket)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// ID returns the node's identity and addresses.
func (c *Client) ID(ctx context.Context) (IDInfo, error) {
	var out IDInfo
	return out, c.do(ctx, http.MethodGet, RouteID, nil, &out)
}

// Peers lists configured peers and pending requests.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	out := []PeerInfo{}
	return out, c.do(ctx, http.MethodGet, RoutePeers, nil, &out)
}

// Connect adds a peer from its connection string.
func (c *Client) Connect(ctx context.Context, connString string) (PeerInfo, error) {
	var out PeerInfo
	return out, c.do(ctx, http.MethodPost, RouteConnect, ConnectRequest{ConnectionString: connString}, &out)
}

// Accept turns a pending request into a peer.
func (c *Client) Accept(ctx context.Context, peer string) (PeerInfo, error) {
	var out PeerInfo
	return out, c.do(ctx, http.MethodPost, RouteAccept, PeerRequest{Peer: peer}, &out)
}

// Decline drops a pending request.
func (c *Client) Decline(ctx context.Context, peer string) error {
	return c.do(ctx, http.MethodPost, RouteDecline, PeerRequest{Peer: peer}, nil)
}

// ReloadConfig makes the agent read its config file again.
func (c *Client) ReloadConfig(ctx context.Context) (ReloadResult, error) {
	var out ReloadResult
	return out, c.do(ctx, http.MethodPost, RouteReload, struct{}{}, &out)
}

// RemovePeer forgets a peer; files still queued for it fail.
func (c *Client) RemovePeer(ctx context.Context, peer string) error {
	return c.do(ctx, http.MethodPost, RouteRemove, PeerRequest{Peer: peer}, nil)
}

// RenamePeer gives a peer a new name.
func (c *Client) RenamePeer(ctx context.Context, peer, name string) (PeerInfo, error) {
	var out PeerInfo
	return out, c.do(ctx, http.MethodPost, RouteRename, RenameRequest{Peer: peer, Name: name}, &out)
}

// SendMessage sends text to peer and returns once the peer stored it.
func (c *Client) SendMessage(ctx context.Context, req MsgRequest) error {
	return c.do(ctx, http.MethodPost, RouteMsg, req, nil)
}

// Messages returns received messages, oldest first.
func (c *Client) Messages(ctx context.Context) ([]Message, error) {
	out := []Message{}
	return out, c.do(ctx, http.MethodGet, RouteMessages, nil, &out)
}

// NAT returns the agent's latest NAT report.
func (c *Client) NAT(ctx context.Context) (NATInfo, error) {
	var out NATInfo
	return out, c.do(ctx, http.MethodGet, RouteNAT, nil, &out)
}

// EventStream is a subscription to the agent's events.
type EventStream struct {
	ctx  context.Context
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Subscribe subscribes to the agent's events. Once it returns, the agent
// holds the subscription and every later event is delivered: subscribe
// first, then read the state, and nothing in between is missed.
func (c *Client) Subscribe(ctx context.Context) (*EventStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+RouteEvents, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.requestError("subscribe to events", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("subscribe to events: %s", resp.Status)
	}
	return &EventStream{ctx: ctx, body: resp.Body, sc: bufio.NewScanner(resp.Body)}, nil
}

// Next waits for the next event. It returns the context's error once the
// context ends.
func (s *EventStream) Next() (Event, error) {
	for s.sc.Scan() {
		data, ok := strings.CutPrefix(s.sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return Event{}, fmt.Errorf("decode event: %w", err)
		}
		return ev, nil
	}
	if err := s.ctx.Err(); err != nil {
		return Event{}, err
	}
	if err := s.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("read events: %w", err)
	}
	return Event{}, errors.New("agent closed the event stream")
}

// Close ends the subscription.
func (s *EventStream) Close() error { return s.body.Close() }

// Events calls fn with each of the agent's events until ctx ends (it then
// returns nil), fn returns an error, or the stream breaks.
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	s, err := c.Subscribe(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	for {
		ev, err := s.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

// Send queues files and folders for a peer.
func (c *Client) Send(ctx context.Context, req SendRequest) (SendResult, error) {
	var out SendResult
	return out, c.do(ctx, http.MethodPost, RouteSend, req, &out)
}

// Config returns the configuration the agent runs with.
func (c *Client) Config(ctx context.Context) (ConfigInfo, error) {
	var out ConfigInfo
	return out, c.do(ctx, http.MethodGet, RouteConfig, nil, &out)
}

// Pause stops sending files (paused true) or resumes it.
func (c *Client) Pause(ctx context.Context, paused bool) error {
	return c.do(ctx, http.MethodPost, RoutePause, PauseRequest{Paused: paused}, nil)
}

// Status returns transfers, the queue, and whether sending is paused.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.do(ctx, http.MethodGet, RouteStatus, nil, &out)
}
