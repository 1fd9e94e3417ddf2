package nat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// testSocket is the node's socket in miniature: a UDP socket on loopback
// whose one reader goroutine hands STUN datagrams to a STUNClient.
func testSocket(t testing.TB) (*net.UDPConn, *STUNClient) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := NewSTUNClient(conn)
	done := make(chan struct{})
	go func() { readLoop(conn, c); close(done) }()
	t.Cleanup(func() { conn.Close(); <-done })
	return conn, c
}

func localAddr(conn *net.UDPConn) netip.AddrPort {
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// blackHole is a UDP socket that reads and counts datagrams but never
// answers, so nobody else can answer on its port either.
type blackHole struct {
	addr netip.AddrPort
	mu   sync.Mutex
	got  [][]byte
}

func newBlackHole(t testing.TB) *blackHole {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h := &blackHole{addr: localAddr(conn)}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			h.mu.Lock()
			h.got = append(h.got, append([]byte(nil), buf[:n]...))
			h.mu.Unlock()
		}
	}()
	return h
}

func (h *blackHole) received() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

func TestBindingCoturn(t *testing.T) {
	primary, alt := startCoturn(t)
	conn, c := testSocket(t)
	ctx := context.Background()
	tests := []struct {
		change   ChangeRequest
		wantFrom netip.AddrPort
	}{
		{NoChange, primary},
		{ChangePort, netip.AddrPortFrom(primary.Addr(), alt.Port())},
		{ChangeIPPort, alt},
	}
	for _, tc := range tests {
		r, err := c.Binding(ctx, primary, tc.change)
		if err != nil {
			t.Fatalf("Binding(%v): %v", tc.change, err)
		}
		if r.Mapped != localAddr(conn) {
			t.Errorf("Binding(%v): mapped %v, want our socket %v", tc.change, r.Mapped, localAddr(conn))
		}
		if r.Other != alt {
			t.Errorf("Binding(%v): OTHER-ADDRESS %v, want %v", tc.change, r.Other, alt)
		}
		if r.From != tc.wantFrom || r.Origin != tc.wantFrom {
			t.Errorf("Binding(%v): from %v, RESPONSE-ORIGIN %v, want %v", tc.change, r.From, r.Origin, tc.wantFrom)
		}
		if r.RTT <= 0 || r.RTT > time.Second {
			t.Errorf("Binding(%v): RTT %v", tc.change, r.RTT)
		}
	}
}

func TestBindingCoturnWithoutRFC5780(t *testing.T) {
	server := startCoturnSingle(t)
	_, c := testSocket(t)
	ctx := context.Background()
	r, err := c.Binding(ctx, server, NoChange)
	if err != nil {
		t.Fatal(err)
	}
	if r.Other.IsValid() {
		t.Errorf("single-address coturn sent OTHER-ADDRESS %v", r.Other)
	}
	for _, change := range []ChangeRequest{ChangePort, ChangeIPPort} {
		_, err := c.Binding(ctx, server, change)
		var er *ErrorResponse
		if !errors.As(err, &er) || er.Code != 420 || !errors.Is(err, ErrSTUNErrorResponse) {
			t.Fatalf("Binding(%v) = %v, want error response 420", change, err)
		}
		t.Logf("%v: %v", change, err)
	}
}

func TestBindingTimeout(t *testing.T) {
	hole := newBlackHole(t)
	_, c := testSocket(t)
	// Sends are due at 0, 100 and 300 ms, the next at 700 ms: a 500 ms
	// context leaves 200 ms of slack either way.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Binding(ctx, hole.addr, NoChange)
	took := time.Since(start)
	if !errors.Is(err, ErrSTUNTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Binding = %v, want ErrSTUNTimeout and DeadlineExceeded", err)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("Binding took %v with a 500 ms ctx", took)
	}
	// Three sends, all with one transaction ID.
	got := hole.received()
	for deadline := time.Now().Add(time.Second); len(got) < 3 && time.Now().Before(deadline); got = hole.received() {
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 3 {
		t.Fatalf("server got %d requests, want 3 (initial + 2 retransmissions)", len(got))
	}
	for _, b := range got[1:] {
		if string(b) != string(got[0]) {
			t.Fatal("a retransmission differs from the first request")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) != 0 {
		t.Fatalf("%d transactions left pending", len(c.pending))
	}
}

func TestBindingCanceled(t *testing.T) {
	hole := newBlackHole(t)
	_, c := testSocket(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Binding(ctx, hole.addr, NoChange)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrSTUNTimeout) {
		t.Fatalf("Binding = %v, want context.Canceled and not a timeout", err)
	}
}

func TestBindingBadRequest(t *testing.T) {
	c := NewSTUNClient(failWriter{})
	ctx := context.Background()
	if _, err := c.Binding(ctx, netip.AddrPort{}, NoChange); !errors.Is(err, ErrSTUNBadRequest) {
		t.Errorf("zero server: %v", err)
	}
	if _, err := c.Binding(ctx, netip.MustParseAddrPort("127.0.0.1:1"), ChangeRequest(0x04)); !errors.Is(err, ErrSTUNBadRequest) {
		t.Errorf("unknown change: %v", err)
	}
	if _, err := c.Binding(ctx, netip.MustParseAddrPort("127.0.0.1:1"), NoChange); !errors.Is(err, errWrite) {
		t.Errorf("write error: %v", err)
	}
}

var errWrite = errors.New("test: write failed")

type failWriter struct{}

func (failWriter) WriteTo([]byte, net.Addr) (int, error) { return 0, errWrite }

// captureWriter hands every request it is asked to send to a channel.
type captureWriter chan []byte

func (w captureWriter) WriteTo(b []byte, _ net.Addr) (int, error) {
	w <- append([]byte(nil), b...)
	return len(b), nil
}

// response builds a Binding response to the request req with extra setters.
func response(t testing.TB, req []byte, typ stun.MessageType, setters ...stun.Setter) []byte {
	t.Helper()
	m := new(stun.Message)
	if req != nil {
		if err := stun.Decode(req, m); err != nil {
			t.Fatal(err)
		}
	}
	all := append([]stun.Setter{stun.NewTransactionIDSetter(m.TransactionID), typ}, setters...)
	out, err := stun.Build(all...)
	if err != nil {
		t.Fatal(err)
	}
	return out.Raw
}

var (
	testMapped = &stun.XORMappedAddress{IP: net.IPv4(203, 0, 113, 7), Port: 41641}
	testFrom   = &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 3478}
)

// TestHandleSTUNMatching feeds a pending transaction wrong answers first:
// each must be ignored, and only the right one completes Binding.
func TestHandleSTUNMatching(t *testing.T) {
	w := make(captureWriter, 16)
	c := NewSTUNClient(w)
	type result struct {
		r   BindingResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := c.Binding(ctx, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 3478), NoChange)
		done <- result{r, err}
	}()
	req := <-w
	good := response(t, req, stun.BindingSuccess, testMapped, stun.Fingerprint)
	badFP := append([]byte(nil), good...)
	badFP[len(badFP)-1] ^= 1
	shortAddr := response(t, req, stun.BindingSuccess, stun.RawAttribute{Type: stun.AttrXORMappedAddress, Value: []byte{0, 1, 0x80, 0x01, 1, 2}})
	ignored := map[string][]byte{
		"other transaction":  response(t, nil, stun.BindingSuccess, testMapped),
		"request class":      response(t, req, stun.BindingRequest, testMapped),
		"indication":         response(t, req, stun.NewType(stun.MethodBinding, stun.ClassIndication)),
		"other method":       response(t, req, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse), testMapped),
		"no mapped address":  response(t, req, stun.BindingSuccess),
		"bad fingerprint":    badFP,
		"truncated":          good[:len(good)-4],
		"trailing garbage":   append(append([]byte(nil), good...), 0, 0, 0, 0),
		"short address":      shortAddr,
		"header only":        good[:stunHeaderLen],
		"error without code": response(t, req, stun.BindingError),
		"oversized":          append(append([]byte(nil), good...), make([]byte, maxSTUNMessage)...),
		"the request echoed": req,
		"garbage":            {1, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42},
	}
	for name, b := range ignored {
		if c.HandleSTUN(b, testFrom) {
			t.Errorf("%s: HandleSTUN accepted it", name)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("Binding returned early: %+v", r)
	default:
	}
	if !c.HandleSTUN(good, testFrom) {
		t.Fatal("HandleSTUN refused the right answer")
	}
	if c.HandleSTUN(good, testFrom) {
		t.Error("HandleSTUN accepted a duplicate answer")
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := netip.MustParseAddrPort("203.0.113.7:41641"); r.r.Mapped != want || r.r.From != ap("192.0.2.1:3478") {
		t.Fatalf("got %+v, want mapped %v from %v", r.r, want, testFrom)
	}
}

// TestBindingConcurrent runs many transactions at once on one socket; with
// -race it checks HandleSTUN's locking.
func TestBindingConcurrent(t *testing.T) {
	primary, alt := startCoturn(t)
	conn, c := testSocket(t)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			server := []netip.AddrPort{primary, alt}[i%2]
			r, err := c.Binding(context.Background(), server, ChangeRequest([]uint8{0, 2, 6}[i%3]))
			if err != nil || r.Mapped != localAddr(conn) {
				t.Errorf("binding %d: %+v %v", i, r, err)
			}
		})
	}
	wg.Wait()
}

// FuzzHandleSTUN checks that HandleSTUN never panics, whatever arrives,
// and that whatever it accepts carries a usable answer.
func FuzzHandleSTUN(f *testing.F) {
	req := response(f, nil, stun.BindingRequest)
	good := response(f, req, stun.BindingSuccess, testMapped,
		&stun.OtherAddress{IP: net.IPv4(192, 0, 2, 2), Port: 3479},
		&stun.ResponseOrigin{IP: net.IPv4(192, 0, 2, 1), Port: 3478}, stun.Fingerprint)
	f.Add(good)
	for _, n := range []int{0, 1, 8, 19, 20, 24, 31, len(good) - 8, len(good) - 1} {
		f.Add(good[:n])
	}
	f.Add(response(f, req, stun.BindingError, stun.ErrorCodeAttribute{Code: 420, Reason: []byte("Unknown attribute\x00")}))
	f.Add(response(f, req, stun.BindingSuccess, &stun.MappedAddress{IP: net.ParseIP("2001:db8::1"), Port: 1}))
	f.Add(response(f, req, stun.BindingSuccess, stun.RawAttribute{Type: stun.AttrXORMappedAddress, Value: []byte{0, 2, 0, 1, 2, 3, 4, 5}}))
	f.Add([]byte("\x00\x01\xff\xff\x21\x12\xa4\x42garbage-garbage"))
	f.Add(make([]byte, 2000))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := NewSTUNClient(failWriter{})
		ch := make(chan stunReply, 1)
		if len(b) >= stunHeaderLen {
			// Make the transaction pending so the decoder runs.
			c.pending[[stun.TransactionIDSize]byte(b[8:stunHeaderLen])] = ch
		}
		if !c.HandleSTUN(b, testFrom) {
			return
		}
		r := <-ch
		var er *ErrorResponse
		if r.err == nil && !r.res.Mapped.IsValid() || r.err != nil && !errors.As(r.err, &er) {
			t.Fatalf("accepted %x as %+v", b, r)
		}
		if c.HandleSTUN(b, testFrom) {
			t.Fatal("accepted the same answer twice")
		}
	})
}

type strAddr string

func (strAddr) Network() string  { return "udp" }
func (a strAddr) String() string { return string(a) }

func TestAddrPortOf(t *testing.T) {
	var nilUDP *net.UDPAddr
	tests := []struct {
		in   net.Addr
		want netip.AddrPort
	}{
		{nil, netip.AddrPort{}},
		{nilUDP, netip.AddrPort{}},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 7}, ap("192.0.2.1:7")},
		{&net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 7}, ap("[2001:db8::1]:7")},
		{strAddr("[::ffff:192.0.2.1]:7"), ap("192.0.2.1:7")},
		{strAddr("not an address"), netip.AddrPort{}},
		{&net.IPAddr{IP: net.IPv4(192, 0, 2, 1)}, netip.AddrPort{}},
	}
	for _, tc := range tests {
		if got := addrPortOf(tc.in); got != tc.want {
			t.Errorf("addrPortOf(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
