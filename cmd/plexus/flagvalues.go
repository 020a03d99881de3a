package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Flag values with units: sizes read and print as 64MiB, durations as 1h;
// neither takes a negative value.

// byteSize is a size in bytes: a plain number, or a number with a unit
// (B, KiB, MiB, GiB, TiB and the decimal KB, MB, GB, TB; K, M, G, T mean
// the binary ones; case-insensitive, a space allowed).
type byteSize int64

var sizeUnits = []struct {
	name string
	mult int64
}{
	{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"tb", 1e12}, {"gb", 1e9}, {"mb", 1e6}, {"kb", 1e3},
	{"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10},
	{"b", 1},
}

// parseSize parses a byteSize (see byteSize).
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.name); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	if t == "" {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit (64MiB, 512KiB, 1GB)", s)
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("size %q: must not be negative", s)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit (64MiB, 512KiB, 1GB)", s)
	}
	v := f * float64(mult)
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("size %q: not a whole number of bytes", s)
	}
	return int64(v), nil
}

// formatSize prints a size with the largest binary unit that divides it
// (64MiB, 100KiB, 1500).
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) String() string { return formatSize(int64(*b)) }

func (b *byteSize) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}

// intSize is a byteSize held in an int (frame and batch sizes).
type intSize int

func (b *intSize) String() string { return formatSize(int64(*b)) }

func (b *intSize) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	if v > math.MaxInt32 {
		return fmt.Errorf("size %q: too large", s)
	}
	*b = intSize(v)
	return nil
}

// count is a non-negative integer.
type count int

func (c *count) String() string { return strconv.Itoa(int(*c)) }

func (c *count) Set(s string) error {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q: want a whole number", s)
	}
	if v < 0 {
		return fmt.Errorf("%q: must not be negative", s)
	}
	*c = count(v)
	return nil
}

// duration is a non-negative time.Duration that prints without zero
// parts (1h, 10m, 1m30s, 200ms rather than 1h0m0s).
type duration time.Duration

func (d *duration) String() string { return formatDuration(time.Duration(*d)) }

func (d *duration) Set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit (500ms, 10s, 5m, 1h)", s)
	}
	if v < 0 {
		return fmt.Errorf("duration %q: must not be negative", s)
	}
	*d = duration(v)
	return nil
}

// formatDuration prints d the way people write it: 1h, 1h30m, 10m, 2s, 200ms.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.String()
	for _, zero := range []string{"h0m0s", "m0s"} {
		if strings.HasSuffix(s, zero) {
			return strings.TrimSuffix(s, zero) + zero[:1]
		}
	}
	return s
}

// orList joins choices as "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}
