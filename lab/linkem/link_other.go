//go:build !linux

package linkem

import (
	"errors"
)

// Link is a Linux packet-socket bridge; elsewhere it cannot be made.
type Link struct{}

// errNotLinux says why Start fails here.
var errNotLinux = errors.New("linkem bridges interfaces with AF_PACKET sockets: Linux only")

// Start fails: there are no packet sockets here.
func Start(a, b string, cfg Config) (*Link, error) { return nil, errNotLinux }

// Set does nothing here.
func (l *Link) Set(Config) error { return errNotLinux }

// Stats are empty here.
func (l *Link) Stats() (up, down Stats) { return }

// Close does nothing here.
func (l *Link) Close() error { return nil }
