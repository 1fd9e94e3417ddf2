package tray

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/punchdrop/punchdrop/control"
)

// The agent's pause switch. control.Client is getting Pause(ctx, paused)
// and Status.Paused; until it has them the tray speaks the route itself.
// TODO: use control.Client.Pause and Status.Paused once they are in.
const routePause = "/v1/transfers/pause"

// errPauseUnsupported is returned when the agent has no pause switch yet.
var errPauseUnsupported = errors.New("this agent cannot pause transfers yet (update punchdrop)")

// pauser talks to the agent's pause route over the control socket.
type pauser struct {
	http *http.Client
}

func newPauser(socket string) pauser {
	return pauser{http: &http.Client{
		Timeout: 10 * time.Second, // a local call; the agent answers in milliseconds
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		},
	}}
}

// set pauses or resumes all transfers.
func (p pauser) set(ctx context.Context, paused bool) error {
	body, _ := json.Marshal(struct {
		Paused bool `json:"paused"`
	}{paused})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent"+routePause, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("pause transfers: %w", err)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("pause transfers: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return errPauseUnsupported
	case resp.StatusCode/100 != 2:
		var e control.ErrorBody
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return fmt.Errorf("pause transfers: %s", e.Error)
		}
		return fmt.Errorf("pause transfers: agent answered %s", resp.Status)
	}
	return nil
}

// status reads the agent's status with its "paused" field, which
// control.Status does not have yet (false from an agent without it).
func (p pauser) status(ctx context.Context) (control.Status, bool, error) {
	var st struct {
		control.Status
		Paused bool `json:"paused"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+control.RouteStatus, nil)
	if err != nil {
		return st.Status, false, fmt.Errorf("read status: %w", err)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return st.Status, false, fmt.Errorf("read status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return st.Status, false, fmt.Errorf("read status: agent answered %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st.Status, false, fmt.Errorf("read status: %w", err)
	}
	return st.Status, st.Paused, nil
}
