// Package agent is punchdrop's long-running background process: it loads
// the config and identity, runs the node, keeps state in the store, and
// serves the control API that the CLI and the tray use.
package agent

import (
	"os"
	"path/filepath"
)

// HomeEnv names the environment variable that, like --home, puts every file
// of a node under one directory.
const HomeEnv = "PUNCHDROP_HOME"

// Paths are where a node keeps its files.
type Paths struct {
	Config    string // config.toml, human-editable
	Identity  string // identity.key, the Ed25519 key (0600)
	State     string // state.db, bbolt (0600)
	Socket    string // control.sock, the control API (0600)
	Log       string // punchdrop.log
	Outbox    string // files dropped here are sent
	Downloads string // received files land here
}

// ResolvePaths returns the paths for home, or for $PUNCHDROP_HOME when home
// is empty, or the XDG locations when both are empty:
//
//	config    $XDG_CONFIG_HOME/punchdrop/config.toml   (~/.config)
//	identity  $XDG_DATA_HOME/punchdrop/identity.key    (~/.local/share)
//	state     $XDG_STATE_HOME/punchdrop/state.db       (~/.local/state)
//	log       $XDG_STATE_HOME/punchdrop/punchdrop.log
//	socket    $XDG_RUNTIME_DIR/punchdrop/control.sock  (else the state dir)
//	outbox    ~/Punchdrop/Outbox, downloads ~/Punchdrop/Downloads
func ResolvePaths(home string) Paths {
	if home == "" {
		home = os.Getenv(HomeEnv)
	}
	if home != "" {
		home, _ = filepath.Abs(home)
		return Paths{
			Config:    filepath.Join(home, "config.toml"),
			Identity:  filepath.Join(home, "identity.key"),
			State:     filepath.Join(home, "state.db"),
			Socket:    filepath.Join(home, "control.sock"),
			Log:       filepath.Join(home, "punchdrop.log"),
			Outbox:    filepath.Join(home, "Outbox"),
			Downloads: filepath.Join(home, "Downloads"),
		}
	}
	user, _ := os.UserHomeDir()
	xdg := func(env, fallback string) string {
		if v := os.Getenv(env); filepath.IsAbs(v) {
			return filepath.Join(v, "punchdrop")
		}
		return filepath.Join(user, fallback, "punchdrop")
	}
	config := xdg("XDG_CONFIG_HOME", ".config")
	data := xdg("XDG_DATA_HOME", ".local/share")
	state := xdg("XDG_STATE_HOME", ".local/state")
	runtime := state
	if v := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(v) {
		runtime = filepath.Join(v, "punchdrop")
	}
	return Paths{
		Config:    filepath.Join(config, "config.toml"),
		Identity:  filepath.Join(data, "identity.key"),
		State:     filepath.Join(state, "state.db"),
		Socket:    filepath.Join(runtime, "control.sock"),
		Log:       filepath.Join(state, "punchdrop.log"),
		Outbox:    filepath.Join(user, "Punchdrop", "Outbox"),
		Downloads: filepath.Join(user, "Punchdrop", "Downloads"),
	}
}
