package linkem

// Config is the shape of each direction of a Link: Up from interface A
// to B, Down from B to A.
type Config struct{ Up, Down Shape }

// Stats count what one direction did to frames.
type Stats struct {
	Frames  uint64 // frames that came in
	Lost    uint64 // dropped by Loss or Burst
	Overrun uint64 // dropped because the bottleneck's queue was full
	Sent    uint64 // frames passed on
}
