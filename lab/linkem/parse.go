package linkem

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseShape reads a shape written as space-separated settings, as the
// linkem command takes them:
//
//	delay=25ms jitter=2ms loss=0.5% burst=0.2%/20%/50% reorder=1% rate=100mbit queue=50ms
//
// burst is GoodToBad/BadToGood/LossBad (LossGood is zero); rates take
// kbit, mbit or gbit (powers of 1000, as tc writes them). An empty
// string is the zero shape.
func ParseShape(s string) (Shape, error) {
	var sh Shape
	for _, field := range strings.Fields(s) {
		key, val, ok := strings.Cut(field, "=")
		if !ok {
			return Shape{}, fmt.Errorf("shape: %q is not key=value", field)
		}
		var err error
		switch key {
		case "delay":
			sh.Delay, err = time.ParseDuration(val)
		case "jitter":
			sh.Jitter, err = time.ParseDuration(val)
		case "queue":
			sh.Queue, err = time.ParseDuration(val)
		case "loss":
			sh.Loss, err = parseShare(val)
		case "reorder":
			sh.Reorder, err = parseShare(val)
		case "rate":
			sh.Rate, err = parseRate(val)
		case "burst":
			sh.Burst, err = parseBurst(val)
		default:
			err = fmt.Errorf("unknown setting (delay, jitter, loss, burst, reorder, rate, queue)")
		}
		if err != nil {
			return Shape{}, fmt.Errorf("shape: %s: %w", field, err)
		}
	}
	return sh, sh.Validate()
}

// parseShare reads a probability: "0.5%" or "0.005".
func parseShare(s string) (float64, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		return v / 100, err
	}
	return strconv.ParseFloat(s, 64)
}

// parseRate reads bits per second: "100mbit", "1.5gbit", "64kbit", "1000".
func parseRate(s string) (int64, error) {
	mult := 1.0
	for suffix, m := range map[string]float64{"kbit": 1e3, "mbit": 1e6, "gbit": 1e9} {
		if v, ok := strings.CutSuffix(strings.ToLower(s), suffix); ok {
			s, mult = v, m
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	return int64(v * mult), err
}

// parseBurst reads GoodToBad/BadToGood/LossBad.
func parseBurst(s string) (*Burst, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return nil, fmt.Errorf("want GoodToBad/BadToGood/LossBad, such as 0.2%%/20%%/50%%")
	}
	var v [3]float64
	for i, p := range parts {
		var err error
		if v[i], err = parseShare(p); err != nil {
			return nil, err
		}
	}
	return &Burst{GoodToBad: v[0], BadToGood: v[1], LossBad: v[2]}, nil
}
