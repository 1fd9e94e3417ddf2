package transfer

import (
	"testing"
	"testing/synctest"
	"time"
)

// A second offer of a transfer waits for the receive that holds it to
// end (a moved session's old stream), and is refused only if it does not
// end within claimWait.
func TestClaimWaitsForTheHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rc Receiver
		const key = "peer/transfer"
		if !rc.claim(t.Context(), key, &incoming{}) {
			t.Fatal("a first claim was refused")
		}
		go func() {
			time.Sleep(claimWait / 4)
			rc.release(key)
		}()
		start := time.Now()
		if !rc.claim(t.Context(), key, &incoming{}) {
			t.Fatal("a second claim was refused although the first let go in time")
		}
		if waited := time.Since(start); waited != claimWait/4 {
			t.Fatalf("the second claim waited %s, want %s", waited, claimWait/4)
		}
		start = time.Now()
		if rc.claim(t.Context(), key, &incoming{}) {
			t.Fatal("a third claim got the transfer while the second holds it")
		}
		if waited := time.Since(start); waited != claimWait {
			t.Fatalf("the refused claim waited %s, want %s", waited, claimWait)
		}
		if rc.receiving(key) == nil {
			t.Fatal("the holder lost its claim")
		}
		rc.release(key)
		if rc.receiving(key) != nil {
			t.Fatal("still active after release")
		}
	})
}
