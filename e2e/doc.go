// Package e2e runs punchdrop agents as separate processes in the NAT lab
// and checks what a user would see. Its tests need root (network
// namespaces); with CI=true they fail instead of skipping without it.
package e2e
