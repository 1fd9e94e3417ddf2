//go:build !linux

package tray

import (
	"context"
	"fmt"
	"time"
)

// CheckDesktop reports that there is no tray on this system yet.
func CheckDesktop(context.Context, time.Duration) error {
	return fmt.Errorf("%w: %w", ErrNoDesktop, ErrUnsupported)
}

// Run reports that there is no tray on this system yet.
func Run(context.Context, Options) error { return ErrUnsupported }
