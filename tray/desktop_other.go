//go:build !linux

package tray

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrUnsupported is returned by Run where the tray does not exist yet.
var ErrUnsupported = errors.New("the punchdrop tray runs on Linux desktops only for now")

// CheckDesktop reports that there is no tray on this system yet.
func CheckDesktop(context.Context, time.Duration) error {
	return fmt.Errorf("%w: %w", ErrNoDesktop, ErrUnsupported)
}

// Run reports that there is no tray on this system yet.
func Run(context.Context, Options) error { return ErrUnsupported }
